"""``facepaint-live eval``: stable report keys, bounds that order as bounds, one-line CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facepaint.runtime.cli import main as cli_main
from facepaint.runtime.evaluation import quality as E


@pytest.fixture(scope="module")
def judges() -> object:
    """The identity judge, loaded once for the module (skips without the [eval] extra)."""
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    pytest.importorskip("facepaint.plugins.trackers.mediapipe")
    from facepaint.runtime.evaluation.identity import IdentityJudge

    return IdentityJudge()


def _check_keys(report: dict) -> None:
    assert tuple(report) == E.REPORT_KEYS
    assert tuple(report["bounds"]) == E.BOUND_NAMES
    assert tuple(report["judge_agreement"]) == E.GEOMETRY_KEYS
    for metrics in (report["metrics"], *report["bounds"].values()):
        assert tuple(metrics) == E.METRIC_KEYS
        assert tuple(metrics["identity"]) == E.IDENTITY_KEYS
        assert tuple(metrics["expression"]) == E.EXPRESSION_KEYS
        assert tuple(metrics["expression"]["signals"]) == E.SIGNAL_KEYS
        for figures in metrics["expression"]["signals"].values():
            assert tuple(figures) == ("r", "amplitude", "lag_frames")
        assert tuple(metrics["landmarks"]) == E.LANDMARK_KEYS
        assert tuple(metrics["pose"]) == E.ANGLE_KEYS
        if metrics["image"] is not None:
            assert tuple(metrics["image"]) == E.IMAGE_KEYS
        assert tuple(metrics["geometry_judge"]) == E.GEOMETRY_KEYS
        for figures in metrics["geometry_judge"].values():
            assert tuple(figures) == ("r", "amplitude")
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN / Infinity anywhere


@pytest.fixture(scope="module")
def cross_report(judges: object, media: Path) -> dict:
    # The driving clip stands in for a rendered output: keys and bounds do not depend on it.
    clip = str(media / "driving" / "lp_d10.mp4")
    config = E.EvalConfig(driving=clip, source=str(media / "portraits" / "lp_s42.jpg"), output=clip,
                          every=10, max_frames=20)
    return E.evaluate(config, identity=judges)


def test_cross_report_keys(cross_report: dict) -> None:
    _check_keys(cross_report)
    assert cross_report["mode"] == "cross" and cross_report["frames"] == 20
    assert "dlib" in cross_report["identity_model"]
    assert cross_report["metrics"]["image"] is None
    assert cross_report["bounds"]["frozen_source"]["identity"]["frames_judged"] == 2


def test_bounds_order_as_bounds(cross_report: dict) -> None:
    frozen = cross_report["bounds"]["frozen_source"]
    pasted = cross_report["bounds"]["pasted_driving"]
    assert frozen["identity"]["aed_median"] < 0.1 < 0.6 < pasted["identity"]["aed_median"]
    assert frozen["identity"]["csim_median"] > pasted["identity"]["csim_median"]
    assert pasted["expression"]["signals"]["jaw"]["r"] > 0.95
    assert frozen["expression"]["signals"]["jaw"]["r"] is None  # a frozen face has no motion to correlate
    assert frozen["expression"]["signals"]["jaw"]["amplitude"] == pytest.approx(0.0)
    assert pasted["expression"]["ed_blendshapes"] < frozen["expression"]["ed_blendshapes"]
    assert pasted["landmarks"]["akd"] < frozen["landmarks"]["akd"]
    # The second judge: the driving frames themselves correlate perfectly, the still not at all.
    assert pasted["geometry_judge"]["jaw"]["r"] > 0.99
    assert frozen["geometry_judge"]["jaw"]["r"] is None
    assert "68" in cross_report["geometry_model"]
    assert cross_report["judge_agreement"]["jaw"] > 0.5  # lp_d10's jaw moves: both judges see it


def test_self_report_pixels(judges: object, media: Path) -> None:
    clip = str(media / "driving" / "lp_d18.mp4")
    config = E.EvalConfig(driving=clip, output=clip, every=6, max_frames=12, self_reenactment=True)
    report = E.evaluate(config, identity=judges)
    _check_keys(report)
    pasted, frozen, out = (report["bounds"]["pasted_driving"]["image"],
                           report["bounds"]["frozen_source"]["image"], report["metrics"]["image"])
    assert pasted["l1"] == 0.0 and pasted["psnr"] >= 100.0 and pasted["ssim"] == pytest.approx(1.0)
    assert out["l1"] < frozen["l1"] and out["psnr"] > frozen["psnr"]
    assert pasted["ssim_frames"] == 2
    assert report["metrics"]["landmarks"]["mode"] == "absolute"
    # Face and mouth regions of the real frames: exact for the real frames themselves, and the
    # frozen source is further off in the face than over the whole frame (the background is still).
    assert pasted["face_l1"] == 0.0 and pasted["mouth_l1"] == 0.0 and pasted["mouth_ssim"] == pytest.approx(1.0)
    assert frozen["face_l1"] > frozen["l1"] > 0.0 and frozen["mouth_psnr"] < 100.0


def test_main_writes_json(judges: object, media: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = str(media / "driving" / "lp_d0.mp4")
    out = tmp_path / "r.json"
    code = cli_main(["eval", "--self", clip, "--output", clip, "--max-frames", "6", "--every", "6",
                     "--json", str(out)])
    assert code == 0
    assert tuple(json.loads(out.read_text())) == E.REPORT_KEYS
    assert "PSNR" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["eval", "--source", "a.jpg"], "--source needs --driving"),
    (["eval", "--self", "v.mp4", "--driving", "d.mp4"], "--self VIDEO takes no --driving"),
    (["eval", "--self", "missing.mp4"], "file not found"),
    (["eval", "--self", "v.mp4", "--every", "0"], "--every must be >= 1"),
])
def test_cli_errors_are_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("facepaint-live: error:")


def test_renders_when_no_output_is_given(judges: object, media: Path) -> None:
    pytest.importorskip("facepaint.runtime.offline")
    config = E.EvalConfig(driving=str(media / "driving" / "lp_d0.mp4"),
                          source=str(media / "portraits" / "lp_s42.jpg"), every=5, max_frames=5)
    report = E.evaluate(config, identity=judges)
    _check_keys(report)
    assert report["output"] is None and report["render"]["frames_out"] == 5
    assert report["metrics"]["faces_missing"] == 0
    assert report["metrics"]["identity"]["aed_median"] < 0.6  # the portrait's person, not the driver


def _results_module() -> object:
    from facepaint.runtime.evaluation import results

    return results


def test_results_page_tables(cross_report: dict) -> None:
    results = _results_module()
    lines = results.table([("a × b", cross_report), ("c × d", cross_report)], results.CROSS_COLUMNS)
    assert len(lines) == 5 and lines[-1].startswith("| **median** |")
    import re

    def columns(line: str) -> int:
        return len(re.findall(r"(?<!\\)\|", line))  # an escaped \| sits inside a cell

    assert all(columns(line) == columns(lines[0]) for line in lines[2:])  # no cell lost
    from facepaint.runtime.evaluation.bench import _report

    stats = {"fps": 30.0, "frames_out": 9, "stages": {"track": {"p50": 9.0, "p95": 12.0}}}
    speed = _report("s.jpg", "d.mp4", "cpu", {"full": [stats], "floor": [stats], "passthrough": [stats]})
    assert any("**1.00**" in line for line in results.bench_lines(speed))
    import argparse

    args = argparse.Namespace(max_frames=20, every=10, media=Path("media"), out=Path("docs") / "RESULTS.md")
    text = results.page([("a × b", cross_report)], [], [("c × d", "no face")], speed, args, 60.0)
    assert "## Cross-reenactment (1 pairs" in text and "- c × d: no face" in text and "## Speed" in text
    assert "(`--no-modules`)" in text
    from facepaint.runtime.evaluation.module_bench import ModuleTiming

    rows = [ModuleTiming("face_generator", "onnxruntime cpu", 12.345, 15.0, 50)]
    text = results.page([("a × b", cross_report)], [], [], speed, args, 60.0, rows)
    assert "| face_generator | onnxruntime cpu | 12.35 | 15.00 |" in text


def test_self_reenactment_takes_the_first_frame_as_reference_unless_told() -> None:
    # The source is the clip's first frame: its face is the neutral that maps to the source as it is.
    assert E._self_reference(None) == {"transformer": {"reference": "first"}}
    given = {"transformer": {"reference": "auto", "expression": 1.2}, "reenactor": {"kind": "neural"}}
    assert E._self_reference(given) == given
    assert E._self_reference({"reenactor": {"kind": "neural"}})["transformer"] == {"reference": "first"}
