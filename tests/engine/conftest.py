"""Real-face fixtures for the engine tests: portraits and driving frames tracked by the product's
own MediaPipe tracker plugin (image mode, smoothing off), so the engine sees exactly what it gets
in a render: the same landmarks, blendshapes, AUs and head-angle signs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.track import FaceTrack

# lp_d10.mp4 frames: 0 is a neutral face, 100 the widest mouth, 223 a full blink.
NEUTRAL, OPEN_MOUTH, BLINK = 0, 100, 223


@pytest.fixture(scope="session")
def tracker():
    """The product's MediaPipe tracker plugin in image mode, smoothing off (closed at the end)."""
    pytest.importorskip("mediapipe")
    from facepaint.plugins.base import load_plugin
    from facepaint.plugins.trackers.config import TrackerConfig

    config = TrackerConfig(smoothing=False)
    with contextlib.closing(load_plugin("facepaint.trackers", config.name)(config)) as tracker:
        yield tracker


@pytest.fixture(scope="session")
def track(tracker):
    """``track(rgb) -> FaceTrack | None``: the largest face of an RGB image, as the engine gets it."""

    def run(rgb: np.ndarray) -> FaceTrack | None:
        faces = tracker.track(np.ascontiguousarray(rgb), None)
        return faces[0] if faces else None

    return run


@pytest.fixture(scope="session")
def dlib_descriptor(track):
    """``descriptor(rgb) -> (128,)``: dlib's face descriptor (the project's identity judge) of the
    face the tracker finds, its box cut below the brows as dlib's detector would; skips without dlib."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    sp = dlib.shape_predictor(models.pose_predictor_model_location())
    rec = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def descriptor(img: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = track(img).bbox
        rect = dlib.rectangle(int(x0), int(y0 + 0.1 * (y1 - y0)), int(x1), int(y1))
        return np.array(rec.compute_face_descriptor(img, sp(img, rect)))

    return descriptor


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
