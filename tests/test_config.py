"""AppConfig: built once from layers, unknown keys refused with a hint, values checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from facepaint.engine.errors import ConfigError
from facepaint.runtime.config import build_app_config, load_toml

BASE = {"source": "me.jpg", "driving": "talk.mp4", "output": "out.mp4"}


def test_later_layers_win_and_nested_tables_merge(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[tracker]\nbeta = 2.0\nmin_cutoff = 0.5\n[encoder]\ncrf = 23\n')
    config = build_app_config(load_toml(toml), BASE, {"tracker": {"beta": 3.0}})
    assert config.tracker.beta == 3.0 and config.tracker.min_cutoff == 0.5
    assert config.encoder.crf == 23 and not config.live


def test_unknown_nested_key_names_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"engine\.transformer\.moth'; did you mean 'engine\.transformer\.mouth'"):
        build_app_config(BASE, {"engine": {"transformer": {"moth": 1.0}}})


def test_bad_value_names_its_section_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_app_config(BASE, {"engine": {"transformer": {"mouth": 5}}})
    assert str(info.value).startswith("engine.transformer: ") and "engine.transformer: engine" not in str(info.value)


@pytest.mark.parametrize("layer", [{"cam": "0"}, {"driving": None, "output": None}])
def test_exactly_one_of_driving_and_cam(layer: dict) -> None:
    values = {**BASE, **layer}
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(ConfigError, match="exactly one of --driving"):
        build_app_config(values)


def test_reference_mode_is_checked() -> None:
    config = build_app_config(BASE, {"engine": {"transformer": {"reference": "source"}}})
    assert config.engine.transformer.reference == "source"
    with pytest.raises(ConfigError, match="reference must be one of"):
        build_app_config(BASE, {"engine": {"transformer": {"reference": "neutral"}}})


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tracker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)


@pytest.mark.parametrize(("layer", "words"), [
    ({"tracker": {"smoothing": "false"}}, "'tracker.smoothing' must be true or false, got 'false'"),
    ({"face_index": "1"}, "'face_index' must be an integer or none, got '1'"),
    ({"engine": {"transformer": {"mouth": "1.2"}}}, "'engine.transformer.mouth' must be a number"),
    ({"virtual_camera": {"size": [640]}}, "'virtual_camera.size' must be a list of 2 values"),
    ({"engine": {"reenactor": {"kind": "magic"}}}, "reenactor kind must be one of geometric, neural"),
    ({"engine": {"model": {"device": "tpu"}}}, "device must be one of cpu, cuda, auto"),
    ({"runtime": {"live_queue": 0}}, "live_queue must be in [1, 8]"),
    ({"runtime": {"track_workers": 0}}, "track_workers must be in [1, 16]"),
    ({"engine": {"model": {"backend": "onnxruntime"}}}, "stages and the mouth net only; add --reenactor neural"),
])
def test_wrong_types_and_values_are_one_line_errors_naming_the_key(layer: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_app_config(BASE, layer)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_toml_types_that_fit_are_taken(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[engine]\nhold_s = 1\n[engine.reenactor]\nkind = "geometric"\n'
                    '[virtual_camera]\nsize = [640, 480]\n')
    config = build_app_config(load_toml(toml), BASE)
    assert config.engine.hold_s == 1.0 and isinstance(config.engine.hold_s, float)  # an int where a float goes
    assert config.virtual_camera.size == (640, 480)  # a TOML array where a tuple goes


def test_every_config_annotation_resolves() -> None:
    """build_config reads each field's annotation: every config class reachable from AppConfig
    must resolve them (a name imported only for type checking would break the type check)."""
    import dataclasses
    import typing

    from facepaint.runtime.config import AppConfig

    todo, seen = [AppConfig], set()
    while todo:
        cls = todo.pop()
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        todo += [h for h in hints.values() if dataclasses.is_dataclass(h) and h not in seen]
    assert len(seen) >= 10
