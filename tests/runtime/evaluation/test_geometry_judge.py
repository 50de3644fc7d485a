"""The second motion judge (dlib's 68 landmarks as continuous geometry) on real frames."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.errors import BackendUnavailable
from facepaint.runtime.evaluation.geometry_judge import GEOMETRY_SIGNALS, GeometryJudge
from facepaint.runtime.evaluation.metrics import geometry_metrics

# lp_d10 frames (0-based): neutral, mouth wide open, eyes shut (as MediaPipe reads them).
NEUTRAL, OPEN_MOUTH, BLINK = 0, 100, 223


def _frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    av = pytest.importorskip("av")
    out = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
            if len(out) == len(wanted):
                break
    return out


@pytest.fixture(scope="module")
def judge() -> GeometryJudge:
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    return GeometryJudge()


def test_signals_follow_the_face(judge: GeometryJudge, media: Path) -> None:
    frames = _frames(media / "driving" / "lp_d10.mp4", {NEUTRAL, OPEN_MOUTH, BLINK})
    sig = {i: dict(zip(GEOMETRY_SIGNALS, judge.measure(f), strict=True)) for i, f in frames.items()}
    assert sig[OPEN_MOUTH]["jaw"] > sig[NEUTRAL]["jaw"] + 0.2
    assert sig[BLINK]["blink"] > sig[NEUTRAL]["blink"] + 0.1
    assert all(abs(sig[NEUTRAL][a]) < 20 for a in ("yaw", "pitch", "roll"))


def test_no_face_is_none(judge: GeometryJudge) -> None:
    assert judge.measure(np.zeros((240, 320, 3), np.uint8)) is None


def test_metrics_relative_angles_and_constant_signals() -> None:
    t = np.linspace(0, 6, 50)
    drv = np.stack([np.sin(t), np.cos(t), np.zeros(50), 10 + np.sin(t), np.sin(2 * t), np.cos(3 * t)], 1)
    out = drv.copy()
    out[:, 3] += 30.0  # a different starting yaw: only the motion counts
    out[5] = np.nan  # a frame without a face is skipped
    result = geometry_metrics(out, drv, GEOMETRY_SIGNALS)
    assert tuple(result) == GEOMETRY_SIGNALS
    assert result["jaw"]["r"] == pytest.approx(1.0) and result["yaw"]["amplitude"] == pytest.approx(1.0)
    assert result["smile"]["r"] is None  # constant driving signal: r undefined, not a crash


def test_missing_dlib_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(BackendUnavailable, match=r"pip install"):
        GeometryJudge()
