"""The motion sweep (bench/motion_sweep.py) on one real pair: the figures it prints follow the engine's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture()
def sweep():
    pytest.importorskip("dlib")
    from facepaint.runtime.evaluation import sweep as module

    return module


def test_settings_parse_to_the_engine_table(sweep) -> None:
    tree = sweep.parse_settings(["transformer.mouth=0.85", "transformer.scale=false", "transformer.reference=source"])
    assert tree == {"engine": {"transformer": {"mouth": 0.85, "scale": False, "reference": "source"}}}


@pytest.mark.slow
def test_sweep_follows_the_mouth_and_the_expression_gain(sweep, media: Path, tmp_path: Path, capsys) -> None:
    common = ["--media", str(media), "--pairs", "lp_s42:lp_d10", "--max-frames", "120"]
    assert sweep.main([*common, "--json", str(tmp_path / "on.json")]) == 0
    assert sweep.main([*common, "--set", "transformer.expression=0", "--json", str(tmp_path / "off.json")]) == 0
    on = json.loads((tmp_path / "on.json").read_text())[0]
    off = json.loads((tmp_path / "off.json").read_text())[0]
    assert set(on["signals"]) == set(sweep.TARGETS)
    assert on["agreement"]["jaw"] is not None  # the second judge read the driving clip
    jaw_r, jaw_amp = on["signals"]["jaw"]
    assert jaw_r > 0.8 and jaw_amp > 0.5  # the output's mouth opens with the driver's
    assert off["signals"]["jaw"][1] < 0.3 * jaw_amp  # expression off: the mouth stays still
    out = capsys.readouterr().out
    assert "transformer.expression=0" in out and "jaw" in out


def test_unknown_setting_is_one_line_and_exit_2(sweep, media: Path, capsys) -> None:
    code = sweep.main(["--media", str(media), "--pairs", "lp_s42:lp_d10", "--max-frames", "5", "--no-agreement",
                       "--set", "transformer.mouht=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("motion_sweep: unknown config key") and "mouth" in err[-1]
