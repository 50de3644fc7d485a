"""--reference auto on real faces: a driver caught mid-word still moves the output's mouth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.reference import NeutralEstimator, choose_reference, neutral_score, normalise_reference
from facepaint.runtime.cli import run
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.streams import iter_frames, make_judge_tracker, video_rate


def _track(path: Path) -> tuple[list, float]:
    """Raw per-frame tracking of a video (the eval judge's settings) and its frame period in s."""
    step = 1.0 / float(video_rate(str(path)))
    tracker = make_judge_tracker()
    try:
        faces = []
        for i, rgb in enumerate(iter_frames(str(path))):
            found = tracker.track(rgb, round(i * step * 1000))
            faces.append(found[0] if found else None)
    finally:
        tracker.close()
    return faces, step


@pytest.fixture(scope="module")
def midword_faces(midword_clip: Path) -> tuple[list, float]:
    return _track(midword_clip)


def test_fixture_starts_mid_word(midword_faces) -> None:
    faces, _ = midword_faces
    jaw = np.array([f.blendshape("jawOpen") for f in faces])
    assert jaw[0] > 0.4 and jaw.min() < 0.1  # open at the cut, shut later on


def test_chooser_picks_a_closed_calm_face(midword_faces) -> None:
    faces, _ = midword_faces
    k = choose_reference(faces)
    assert k is not None and k > 0
    assert faces[k].blendshape("jawOpen") < 0.1
    assert neutral_score(faces[k]) < neutral_score(faces[0])


def test_live_estimator_leaves_the_open_first_face(midword_faces) -> None:
    faces, step = midword_faces
    estimator = NeutralEstimator()
    chosen = [i for i, f in enumerate(faces) if estimator.update(f, i * step)]
    assert chosen[0] == 0 and len(chosen) > 1  # the first face at once, then calmer ones
    assert faces[chosen[-1]].blendshape("jawOpen") < 0.1
    estimator.pin()
    assert not any(estimator.update(f, 10.0 + i * step) for i, f in enumerate(faces))


def test_reference_names() -> None:
    assert normalise_reference("first-frame") == "first"
    config = build_app_config({"source": "s.jpg", "driving": "d.mp4", "output": "o.mp4",
                               "engine": {"transformer": {"reference": "first-frame"}}})
    assert config.engine.transformer.reference == "first"
    assert build_app_config({"source": "s.jpg", "cam": "0"}).engine.transformer.reference == "auto"


def _jaw_figures(source: Path, clip: Path, out: Path, reference: str, capsys) -> tuple[float, float, str]:
    assert run(["--source", str(source), "--driving", str(clip), "--output", str(out), "--quiet",
                "--reference", reference]) == 0
    summary = capsys.readouterr().err
    drv, _ = _track(clip)
    got, _ = _track(out)
    jaw = M.expression_metrics(M.series_from_tracks(got), M.series_from_tracks(drv))["signals"]["jaw"]
    return jaw["r"], jaw["amplitude"], summary


@pytest.mark.slow
def test_auto_moves_the_mouth_of_a_mid_word_clip(media, midword_clip, tmp_path, capsys) -> None:
    source = media / "portraits" / "lp_s42.jpg"
    r_auto, amp_auto, summary = _jaw_figures(source, midword_clip, tmp_path / "auto.mp4", "auto", capsys)
    assert "reference: auto, frame " in summary and "frame 0" not in summary
    r_first, amp_first, _ = _jaw_figures(source, midword_clip, tmp_path / "first.mp4", "first", capsys)
    # Measured: auto r 0.9x amp 0.9x; first: the output's mouth mostly stays shut.
    assert r_auto >= 0.8 and amp_auto >= 0.5
    assert amp_auto > amp_first + 0.2
