"""Pure metric functions: pixels, correlations, tracked series (no media, no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facepaint.engine.track import BLENDSHAPE_NAMES, FaceTrack
from facepaint.runtime.evaluation import metrics as M


def _track(jaw: float = 0.0, yaw: float = 0.0, shift: float = 0.0) -> FaceTrack:
    rng = np.random.default_rng(0)
    lm = rng.uniform(100, 400, size=(478, 3)).astype(np.float32)
    lm[:, 0] += shift
    bs = np.zeros(52, np.float32)
    bs[BLENDSHAPE_NAMES.index("jawOpen")] = jaw
    rot = np.array([yaw, 0.0, 0.0], np.float32)
    au = np.concatenate([np.full(17, jaw, np.float32), rot])
    return FaceTrack(lm, bs, rot, np.zeros(3, np.float32), au, "mediapipe478", (512, 512))


def test_identical_images_are_perfect() -> None:
    img = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    assert M.l1(img, img) == 0.0
    assert M.psnr(img, img) >= 100.0
    assert M.ssim(img, img) == pytest.approx(1.0)


def test_different_images_score_worse() -> None:
    a = np.full((64, 64, 3), 100, np.uint8)
    b = np.full((64, 64, 3), 110, np.uint8)
    assert M.l1(a, b) == pytest.approx(10 / 255)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_pearson_is_none_for_constant_or_short_signals() -> None:
    x = np.linspace(0, 1, 20)
    assert M.pearson(x, np.full(20, 0.3)) is None
    assert M.pearson(x[:2], x[:2]) is None
    assert M.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert M.pearson(x, -x) == pytest.approx(-1.0)
    with_nan = x.copy()
    with_nan[3] = np.nan
    assert M.pearson(with_nan, x) == pytest.approx(1.0)


def test_amplitude_ratio() -> None:
    x = np.sin(np.linspace(0, 6, 50))
    assert M.amplitude_ratio(0.5 * x, x) == pytest.approx(0.5)
    assert M.amplitude_ratio(x, np.zeros(50)) is None


def test_series_counts_missing_faces() -> None:
    series = M.series_from_tracks([_track(), None, _track()])
    assert series.found.tolist() == [True, False, True]
    assert np.isnan(series.blendshapes[1]).all()
    empty = M.series_from_tracks([None, None])
    assert not empty.found.any()


def test_same_series_scores_perfect_motion() -> None:
    tracks = [_track(jaw=j, yaw=5 * j, shift=10 * j) for j in np.linspace(0, 1, 10)]
    s = M.series_from_tracks(tracks)
    expr = M.expression_metrics(s, s)
    assert expr["ed_blendshapes"] == pytest.approx(0.0)
    assert expr["signals"]["jaw"]["r"] == pytest.approx(1.0)
    assert expr["signals"]["jaw"]["amplitude"] == pytest.approx(1.0)
    assert expr["signals"]["blink"] == {"r": None, "amplitude": None, "lag_frames": None}  # constant: no crash
    assert expr["signals"]["jaw"]["lag_frames"] == 0
    pose = M.pose_metrics(s, s)
    assert pose["yaw"]["mae_deg"] == pytest.approx(0.0) and pose["yaw"]["r"] == pytest.approx(1.0)
    assert M.landmark_metrics(s, s, absolute=True)["akd"] == pytest.approx(0.0)
    assert M.landmark_metrics(s, s, absolute=False)["akd"] == pytest.approx(0.0)


def test_frozen_series_has_no_motion() -> None:
    moving = M.series_from_tracks([_track(jaw=j, yaw=5 * j) for j in np.linspace(0, 1, 10)])
    frozen = M.series_from_tracks([_track()] * 10)
    expr = M.expression_metrics(frozen, moving)
    assert expr["signals"]["jaw"]["r"] is None
    assert expr["signals"]["jaw"]["amplitude"] == pytest.approx(0.0)
    assert M.pose_metrics(frozen, moving)["yaw"]["mae_deg"] == pytest.approx(2.5)


def test_identity_summary_counts_missing() -> None:
    out = M.identity_summary([0.2, None, 0.4], [0.9, None, 0.8])
    assert out["aed_median"] == pytest.approx(0.3)
    assert out["faces_missing"] == 1 and out["frames_judged"] == 3
    assert out["same_person_rate"] == pytest.approx(1.0)
    none = M.identity_summary([None], [None])
    assert none["aed_median"] is None and none["faces_missing"] == 1


def test_candidate_metrics_keys_and_json_safety() -> None:
    from facepaint.runtime.evaluation.quality import METRIC_KEYS

    log = M.CandidateLog()
    for _ in range(5):
        log.add_track(_track())
    log.add_identity(None, np.ones(128))
    log.add_identity(np.ones(128), np.ones(128))
    drv = M.series_from_tracks([_track(jaw=j) for j in np.linspace(0, 1, 5)])
    result = M.candidate_metrics(log, drv, None)
    assert tuple(result) == METRIC_KEYS
    assert result["identity"]["aed_median"] == pytest.approx(0.0)
    assert result["identity"]["csim_median"] == pytest.approx(1.0)
    assert result["image"] is None
    import json

    json.dumps(result, allow_nan=False)


def test_output_without_any_face_is_counted_not_a_crash() -> None:
    log = M.CandidateLog()
    for _ in range(4):
        log.add_track(None)
        log.add_identity(None, np.ones(128))
    drv = M.series_from_tracks([_track(jaw=j) for j in np.linspace(0, 1, 4)])
    for real in (None, drv):
        result = M.candidate_metrics(log, drv, real)
        assert result["faces_missing"] == 4
        assert result["identity"]["faces_missing"] == 4 and result["identity"]["aed_median"] is None
        assert result["expression"]["ed_blendshapes"] is None
        assert result["pose"]["yaw"] == {"mae_deg": None, "r": None, "amplitude": None}
        assert result["landmarks"]["akd"] is None


def test_lag_finds_a_delayed_signal() -> None:
    t = np.arange(60)
    driving = np.sin(t / 4.0)
    late = np.concatenate([np.zeros(3), driving[:-3]])
    assert M.lag(late, driving) == 3
    assert M.lag(driving, driving) == 0
    assert M.lag(np.zeros(60), driving) is None


def test_jitter_is_zero_for_steady_motion_and_grows_with_shake() -> None:
    steady = M.series_from_tracks([_track(shift=2.0 * i) for i in range(10)])
    shaky = M.series_from_tracks([_track(shift=3.0 * (i % 2)) for i in range(10)])
    assert M.jitter(steady) == pytest.approx(0.0, abs=1e-6)
    assert M.jitter(shaky) > 0.01
    assert M.jitter(M.series_from_tracks([_track()])) is None
