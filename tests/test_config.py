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
    assert build_app_config(BASE, {"engine": {"transformer": {"reference": "source"}}}).engine.transformer.reference == "source"
    with pytest.raises(ConfigError, match="reference must be one of"):
        build_app_config(BASE, {"engine": {"transformer": {"reference": "neutral"}}})


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tracker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)
