"""The flag table: every row names a real config key, its range is the one the config enforces, and
a command line becomes the config layer the rows describe."""

from __future__ import annotations

import math

import pytest

from facepaint.engine.errors import ConfigError
from facepaint.runtime.cli import build_parser
from facepaint.runtime.config import build_app_config
from facepaint.runtime.flags import FLAGS, MAIN, config_default, config_layer

BASE = {"source": "me.jpg", "driving": "d.mp4", "output": "o.mp4"}


def _layer(key: str, value: object) -> dict:
    *path, name = key.split(".")
    layer: dict = {name: value}
    for part in reversed(path):
        layer = {part: layer}
    return layer


def test_every_key_is_a_config_setting_and_set_by_one_flag() -> None:
    keys = [key for f in FLAGS for key in f.keys]
    assert len(keys) == len(set(keys))
    for f in FLAGS:
        for key in f.keys:
            config_default(key)  # raises KeyError/AttributeError on a key AppConfig lacks
    assert {f.flag for f in FLAGS if f.key is None} == {"--config"}


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.range is not None], ids=lambda f: f.flag)
def test_range_is_the_one_the_config_enforces(flag) -> None:
    lo, hi = flag.range
    for value in (lo, hi):
        if math.isfinite(value) and flag.key != "duration":  # a duration is > 0: its range is open
            build_app_config(BASE, _layer(flag.key, flag.type(value)))
    below = lo - 1 if flag.type is int else lo - 0.01
    with pytest.raises(ConfigError):
        build_app_config(BASE, _layer(flag.key, flag.type(below)))
    if math.isfinite(hi):
        with pytest.raises(ConfigError):
            build_app_config(BASE, _layer(flag.key, flag.type(hi + 1 if flag.type is int else hi + 0.01)))


def test_command_line_to_config_layer() -> None:
    args = build_parser().parse_args(["--source", "s.jpg", "--cam", "0", "--pose-scale", "0.5", "--no-vcam",
                                      "--quiet", "--size", "640x360", "--au", "AU12=0.8", "--reference", "first",
                                      "--face-index", "0", "--allow-fp32", "--reenactor", "neural"])
    layer = config_layer(args)
    assert layer["engine"]["transformer"] == {"rotation": 0.5, "translation": 0.5, "reference": "first"}
    assert layer["vcam"] is False and layer["progress"] is False and layer["face_index"] == 0
    assert layer["virtual_camera"] == {"size": (640, 360)}
    assert layer["engine"]["expression"] == {"au": (("AU12", 0.8, False),)}
    assert layer["engine"]["model"] == {"allow_fp32": True} and layer["engine"]["reenactor"] == {"kind": "neural"}
    config = build_app_config(layer)
    assert config.engine.transformer.rotation == config.engine.transformer.translation == 0.5
    assert not config.vcam and config.virtual_camera.size == (640, 360)
    assert config_layer(build_parser().parse_args(["--source", "s.jpg"])) == {"source": "s.jpg"}


def test_bad_text_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--size must look like 1280x720"):
        config_layer(build_parser().parse_args(["--source", "s.jpg", "--size", "big"]))


def test_defaults_come_from_the_config() -> None:
    rows = {f.flag: f for f in FLAGS if MAIN in f.commands}
    assert rows["--crf"].default == 18 and rows["--strength"].default == 1.0
    assert rows["--no-vcam"].default is True and rows["--reference"].default == "auto"
    assert rows["--source"].default is None
