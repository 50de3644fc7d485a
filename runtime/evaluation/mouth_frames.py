"""Single frames for the mouth sheets (``bench/mouth_sheet.py``, ``bench/mouth_ab.py``): a clip's
telling frames (mouth widest, eyes shut, head turned) and one portrait rendered at one of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.engine.errors import NoFaceError
from facepaint.engine.face_reenactor import ReenactorConfig
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.track import FaceTrack
from facepaint.plugins.sources.video import VideoSource


@dataclass(frozen=True, eq=False)
class ClipFrames:
    """A driving clip's first frames, tracked (video mode, smoothing off)."""

    images: list[np.ndarray]
    faces: list[FaceTrack | None]

    def neutral(self) -> int:
        """The first frame with a face (``--reference first``)."""
        return next(i for i, f in enumerate(self.faces) if f is not None)

    def face(self, index: int) -> FaceTrack:
        """The face of frame ``index`` (the frame pickers only return frames with one)."""
        found = self.faces[index]
        if found is None:
            raise NoFaceError(f"no face in driving frame {index}")
        return found

    def widest_mouth(self) -> int:
        return self._best(lambda f: f.blendshape("jawOpen"))

    def blink(self) -> int:
        return self._best(lambda f: f.blendshape("eyeBlinkLeft") + f.blendshape("eyeBlinkRight"))

    def head_turn(self) -> int:
        yaw = float(self.face(self.neutral()).rotation[0])
        return self._best(lambda f: abs(float(f.rotation[0]) - yaw))

    def _best(self, score) -> int:
        values = [score(f) if f is not None else -np.inf for f in self.faces]
        return int(np.argmax(values))


def read_clip(path: str, tracker, max_frames: int) -> ClipFrames:
    """The first ``max_frames`` frames of ``path``, each tracked in video mode."""
    images, faces = [], []
    tracker.reset()
    with VideoSource(path) as video:
        for frame, i in zip(video, range(max_frames), strict=False):
            got = tracker.track(np.ascontiguousarray(frame.image), int(round(1000 * frame.pts)) + i)
            images.append(frame.image)
            faces.append(got[0] if got else None)
    tracker.reset()
    return ClipFrames(images, faces)


def render_at(image: np.ndarray, face: FaceTrack, clip: ClipFrames, index: int, colour: str,
              base: EngineConfig | None = None, fill: str = "paint") -> tuple[np.ndarray, np.ndarray]:
    """(output at ``clip`` frame ``index`` driving ``image`` with ``mouth_colour = colour`` and
    ``mouth_fill = fill``, the target landmarks in output pixels); the neutral is the clip's first face."""
    base = base or EngineConfig()
    config = dataclasses.replace(base, reenactor=dataclasses.replace(base.reenactor or ReenactorConfig(),
                                                                     mouth_colour=colour, mouth_fill=fill))
    with ReenactmentEngine(config, image, face) as engine:
        engine.calibrate(clip.face(clip.neutral()))
        driving = clip.face(index)
        target = engine.transformer.transform(driving)
        out = engine.render(clip.images[index], driving, 0.0)
        landmarks = target.landmarks[:, :2] + np.asarray(engine.source.origin, np.float64)
    return out, landmarks


def face_tile(image: np.ndarray, landmarks: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """A ``size`` px square around the face (``zoom`` > 1: closer, on the mouth's side)."""
    pts = np.asarray(landmarks)[:, :2]
    centre = pts.mean(0)
    side = 1.5 * float(np.ptp(pts, axis=0).max()) / zoom
    if zoom > 1.0:
        centre = pts[[13, 14]].mean(0)  # the inner lips' centre (MediaPipe mesh)
    x0, y0 = centre - side / 2
    m = np.array([[size / side, 0, -x0 * size / side], [0, size / side, -y0 * size / side]], np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with ``text`` written in its top-left corner."""
    out = tile.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out
