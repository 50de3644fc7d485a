"""The One-Euro filter and the per-track smoother (no media needed).

The checks on real video (jitter, blink and jaw kept) are in test_tracker_mediapipe.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.errors import InputError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.trackers.blendshapes import au_vector
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.smoothing import OneEuroFilter, StreamFollower, TrackSmoother

FPS = 30.0


def _run(f: OneEuroFilter, samples: np.ndarray, scale: float = 1.0) -> np.ndarray:
    return np.array([f(x, i / FPS, scale) for i, x in enumerate(samples)])


def test_one_euro_reduces_jitter_on_a_noisy_constant() -> None:
    rng = np.random.default_rng(0)
    noisy = 10.0 + rng.normal(0.0, 0.5, size=(300, 4, 3))
    c = TrackerConfig()
    out = _run(OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff), noisy, scale=10.0)
    assert out.shape == noisy.shape
    raw_jitter = np.std(np.diff(noisy[50:], axis=0))
    assert np.std(np.diff(out[50:], axis=0)) < 0.3 * raw_jitter
    assert abs(out[50:].mean() - 10.0) < 0.1


def test_one_euro_follows_a_step_quickly() -> None:
    c = TrackerConfig()
    step = np.r_[np.zeros(30), np.ones(30)][:, None]
    out = _run(OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff), step)[:, 0]
    assert out[30] > 0.3, "the first frame after a blink-sized jump must move most of the way"
    assert out[33] > 0.9
    assert abs(out[-1] - 1.0) < 0.01


def test_one_euro_first_sample_passes_and_reset_forgets() -> None:
    f = OneEuroFilter(1.0, 0.0)
    np.testing.assert_array_equal(f(np.array([5.0, 6.0]), 0.0), [5.0, 6.0])
    assert f(np.array([7.0, 8.0]), 1 / FPS)[0] < 7.0
    f.reset()
    np.testing.assert_array_equal(f(np.array([1.0, 2.0]), 2 / FPS), [1.0, 2.0])
    # A time that does not advance restarts the filter instead of dividing by zero.
    np.testing.assert_array_equal(f(np.array([3.0, 4.0]), 2 / FPS), [3.0, 4.0])


def test_one_euro_is_elementwise() -> None:
    """A fast element (a blinking lid) must not drag a still one along, nor be slowed by it."""
    f = OneEuroFilter(1.0, 5.0)
    x = np.zeros((2,))
    f(x, 0.0)
    out = f(np.array([0.0, 1.0]), 1 / FPS)
    assert out[0] == 0.0 and out[1] > 0.1


def _track(landmarks: np.ndarray, jaw: float) -> FaceTrack:
    blend = np.zeros(52, np.float32)
    blend[25] = jaw
    rotation = np.zeros(3, np.float32)
    return FaceTrack(
        landmarks.astype(np.float32),
        blend,
        rotation,
        np.zeros(3, np.float32),
        au_vector(blend, rotation),
        "ibug68",
        (640, 480),
    )


def test_track_smoother_keeps_types_and_recomputes_au() -> None:
    c = TrackerConfig()
    smoother = TrackSmoother(c.min_cutoff, c.beta, c.d_cutoff, au_vector, translation_scale=15.0)
    base = np.random.default_rng(1).uniform(100, 300, size=(68, 3))
    smoother(_track(base, 0.0), 0.0)
    out = smoother(_track(base + 1.0, 1.0), 1 / FPS)
    assert out.landmarks.dtype == np.float32 and out.landmarks.shape == (68, 3)
    assert 0.0 < out.blendshapes[25] < 1.0
    np.testing.assert_allclose(out.au, au_vector(out.blendshapes, out.rotation))
    assert out.topology == "ibug68" and out.frame_size == (640, 480)


def test_stream_follower_timestamps_misses_and_reset() -> None:
    follower = StreamFollower(None)
    assert follower.check_timestamp(10) == 10
    with pytest.raises(InputError, match="reset"):
        follower.check_timestamp(10)
    assert follower.follow([], 20) == []
    assert follower.frames_without_face == 1
    follower.reset()
    assert follower.check_timestamp(0) == 0


def _face_at(value: float) -> FaceTrack:
    from facepaint.engine.track import FaceTrack

    return FaceTrack(landmarks=np.full((478, 3), value, np.float32), blendshapes=np.full(52, value / 100, np.float32),
                     rotation=np.full(3, value, np.float32), translation=np.zeros(3, np.float32),
                     au=np.zeros(20, np.float32), topology="mediapipe478", frame_size=(64, 64))


def _run_centered(values: list[float | None]) -> list:
    from facepaint.plugins.trackers.smoothing import CenteredSmoother

    smoother = CenteredSmoother(radius=1, sigma=0.8)
    out = []
    for i, v in enumerate(values):
        out += smoother.push(i, None if v is None else _face_at(v))
    return out + smoother.flush()


def test_centered_smoother_has_no_lag_and_releases_every_frame_in_order() -> None:
    ramp = [float(i) for i in range(10)]
    out = _run_centered(ramp)
    assert [item for item, _ in out] == list(range(10))
    # A causal filter trails a ramp; a symmetric window follows it exactly inside the stream.
    assert [float(f.landmarks[0, 0]) for _, f in out[1:-1]] == pytest.approx(ramp[1:-1], abs=1e-4)


def test_centered_smoother_reduces_noise_and_keeps_lost_faces_lost() -> None:
    rng = np.random.default_rng(0)
    noisy = list(100 + rng.normal(0, 2, 200))
    out = _run_centered(noisy)
    smoothed = np.array([f.landmarks[0, 0] for _, f in out])
    assert np.std(np.diff(smoothed)) < 0.75 * np.std(np.diff(noisy))
    gaps = _run_centered([1.0, None, 3.0])
    assert gaps[1][1] is None and gaps[0][1] is not None and gaps[2][1] is not None
