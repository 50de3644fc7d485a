"""The face-alignment tracker's code paths, with a stand-in network.

The stand-in has face-alignment's interface (``get_landmarks_from_image``) and returns the 68-point
subset of MediaPipe's mesh on real frames, so geometry-derived blendshapes and pose see real faces.
The real network needs its weights downloaded, which these tests never do.
"""

from __future__ import annotations

import sys
import types
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepaint.engine.errors import BackendUnavailable, FacepaintError, InputError, ModelError
from facepaint.engine.topology import IBUG68_FROM_MESH
from facepaint.plugins.base import Tracker, load_plugin
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.fan import FanTracker, default_network, head_pose
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

# Frames (0-based) of the driving clips, picked from MediaPipe's blendshapes and pose.
D10_NEUTRAL, D10_OPEN_MOUTH, D10_BLINK = 0, 100, 223  # jawOpen 0.00 / 0.88, eyeBlink 0.85
D12_TURNED = {47: -1, 81: +1}  # MediaPipe yaw -17 / +16 degrees


class StandIn:
    """Returns fixed landmark sets, like FaceAlignment.get_landmarks_from_image (None for none)."""

    def __init__(self, faces: list[np.ndarray]) -> None:
        self.faces = faces
        self.calls = 0

    def get_landmarks_from_image(self, image: np.ndarray) -> list[np.ndarray] | None:
        """The fixed faces, or None when there are none."""
        self.calls += 1
        return [f.copy() for f in self.faces] or None


def _tracker(faces: list[np.ndarray], **config: object) -> FanTracker:
    return FanTracker(TrackerConfig(name="face-alignment", **config), network_factory=lambda c: StandIn(faces))


def _frame(path: Path, index: int) -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(index)


@pytest.fixture(scope="module")
def ibug(media: Path) -> Iterator[dict[str, np.ndarray]]:
    """68-point landmark sets of real frames (MediaPipe's mesh subset), keyed by name."""
    images = {
        "obama": np.ascontiguousarray(cv2.imread(str(media / "portraits" / "obama.jpg"))[:, :, ::-1]),
        "neutral": _frame(media / "driving" / "lp_d10.mp4", D10_NEUTRAL),
        "open_mouth": _frame(media / "driving" / "lp_d10.mp4", D10_OPEN_MOUTH),
        "blink": _frame(media / "driving" / "lp_d10.mp4", D10_BLINK),
    }
    images.update({f"yaw{sign:+d}": _frame(media / "driving" / "lp_d12.mp4", i) for i, sign in D12_TURNED.items()})
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        yield {name: tracker.track(image)[0].landmarks[list(IBUG68_FROM_MESH), :2] for name, image in images.items()}


def test_geometry_blendshapes_respond(ibug: dict[str, np.ndarray]) -> None:
    image = np.zeros((512, 512, 3), np.uint8)
    faces = {}
    for name in ("neutral", "open_mouth", "blink"):
        faces[name] = _tracker([ibug[name]]).track(image)[0]
    assert faces["open_mouth"].blendshape("jawOpen") > faces["neutral"].blendshape("jawOpen") + 0.4
    for eye in ("eyeBlinkLeft", "eyeBlinkRight"):
        assert faces["blink"].blendshape(eye) > faces["neutral"].blendshape(eye) + 0.4
    assert faces["blink"].au[16] > 2.5  # AU45
    face = faces["neutral"]
    assert face.topology == "ibug68" and face.landmarks.shape == (68, 3) and face.landmarks.dtype == np.float32
    assert np.all(face.landmarks[:, 2] == 0)
    assert face.blendshape("cheekPuff") == 0.0  # geometry cannot tell: left at 0


def test_pose_from_geometry(ibug: dict[str, np.ndarray]) -> None:
    obama = _tracker([ibug["obama"]]).track(np.zeros((1137, 910, 3), np.uint8))[0]
    assert np.all(np.abs(obama.rotation) < 15), obama.rotation
    image = np.zeros((512, 512, 3), np.uint8)
    for sign in (-1, +1):
        yaw = _tracker([ibug[f"yaw{sign:+d}"]]).track(image)[0].rotation[0]
        assert np.sign(yaw) == sign and abs(yaw) > 5, yaw
    assert obama.translation[2] < 0


def test_sorted_by_size_and_capped(ibug: dict[str, np.ndarray]) -> None:
    big = ibug["obama"]
    small = (big - big.mean(axis=0)) * 0.4 + [150.0, 150.0]
    image = np.zeros((1137, 910, 3), np.uint8)
    faces = _tracker([small, big]).track(image)
    assert len(faces) == 2 and faces[0].area > faces[1].area
    np.testing.assert_allclose(faces[0].landmarks[:, :2], big, atol=1e-3)
    assert len(_tracker([small, big], max_faces=1).track(image)) == 1
    assert len(_tracker([small, big]).track(image, 0)) == 1  # video mode follows one face


def test_no_face_and_video_mode(ibug: dict[str, np.ndarray]) -> None:
    image = np.zeros((512, 512, 3), np.uint8)
    with _tracker([]) as tracker:
        assert tracker.track(image) == [] and tracker.track(image, 0) == []
        assert tracker.frames_without_face == 1
        with pytest.raises(InputError, match="increase"):
            tracker.track(image, 0)
        tracker.reset()
        assert tracker.track(image, 0) == []
    rng = np.random.default_rng(0)
    noisy = [ibug["neutral"] + rng.normal(0, 1.0, (68, 2)) for _ in range(60)]
    network = StandIn([])
    tracker = FanTracker(TrackerConfig(), network_factory=lambda c: network)
    out = []
    for i, points in enumerate(noisy):
        network.faces = [points]
        out.append(tracker.track(image, i * 33)[0].landmarks[:, :2])
    raw_jitter = np.std(np.diff(np.array(noisy)[20:], axis=0))
    assert np.std(np.diff(np.array(out)[20:], axis=0)) < 0.5 * raw_jitter


def test_close_is_final(ibug: dict[str, np.ndarray]) -> None:
    tracker = _tracker([ibug["neutral"]])
    tracker.close()
    tracker.close()
    with pytest.raises(FacepaintError, match="closed"):
        tracker.track(np.zeros((64, 64, 3), np.uint8))


def test_bad_landmark_shape_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="68"):
        _tracker([np.zeros((5, 2))]).track(np.zeros((64, 64, 3), np.uint8))


def test_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # makes the import fail
    with pytest.raises(BackendUnavailable, match=r"pip install 'facepaint-live\[fan\]'"):
        FanTracker(TrackerConfig(name="face-alignment"))


def _fake_face_alignment(error: Exception | None) -> types.ModuleType:
    module = types.ModuleType("face_alignment")
    module.LandmarksType = types.SimpleNamespace(TWO_D=1, THREE_D=3)  # type: ignore[attr-defined]

    class FaceAlignment:
        def __init__(
            self, landmarks_type: int, device: str = "cuda", flip_input: bool = True, compile: bool = True
        ) -> None:
            if error is not None:
                raise error
            self.args = (landmarks_type, device, flip_input, compile)

    module.FaceAlignment = FaceAlignment  # type: ignore[attr-defined]
    return module


def test_offline_download_is_a_one_line_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # What torch.hub raises inside FaceAlignment() with no network (seen on this machine).
    offline = urllib.error.URLError(OSError(-2, "Name or service not known"))
    monkeypatch.setitem(sys.modules, "face_alignment", _fake_face_alignment(offline))
    with pytest.raises(ModelError, match="could not download its weights") as caught:
        FanTracker(TrackerConfig(name="face-alignment"))
    assert "\n" not in str(caught.value) and "--tracker mediapipe" in str(caught.value)
    monkeypatch.setitem(sys.modules, "face_alignment", _fake_face_alignment(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):  # only download errors are translated
        FanTracker(TrackerConfig(name="face-alignment"))


def test_default_network_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "face_alignment", _fake_face_alignment(None))
    network = default_network(TrackerConfig(device="cpu"))
    assert network.args == (1, "cpu", False, False)  # 2-D, no flip, no torch.compile


def test_cuda_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "face_alignment", _fake_face_alignment(None))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable, match="no CUDA"):
        default_network(TrackerConfig(device="cuda"))


def test_registered() -> None:
    assert load_plugin("facepaint.trackers", "face-alignment") is FanTracker
    assert issubclass(FanTracker, Tracker)



@pytest.mark.parametrize(("clip", "frames"), [("lp_d0", 78), ("lp_d18", 100)])
def test_pose_never_flips_on_talking_clips(media: Path, clip: str, frames: int) -> None:
    """dlib's 68 points (another landmark network, like FAN's) on real frames: the nearly planar
    rigid points let the PnP solve return the mirror pose (yaw and roll near 180 degrees) on
    lp_d0 frame 25 and lp_d18 frame 97 before the fix."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    av = pytest.importorskip("av")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_model_location())
    with av.open(str(media / "driving" / f"{clip}.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            rect = max(detector(rgb, 0), key=lambda r: r.area())
            points = np.array([[p.x, p.y] for p in predictor(rgb, rect).parts()], np.float64)
            angles, _ = head_pose(points, rgb.shape[1], rgb.shape[0])
            assert np.all(np.abs(angles) < 30), (i, angles)
