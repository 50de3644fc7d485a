"""What a tracker reports for one face in one frame, in the form every engine stage consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe FaceLandmarker's 52 blendshape categories, in its output order.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)

# The 17 action units of FACEGAN's 20-d vector (OpenFace's intensity set), then yaw, pitch, roll.
AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
    "AU20", "AU23", "AU25", "AU26", "AU45", "yaw", "pitch", "roll",
)

TOPOLOGIES = ("mediapipe478", "ibug68")


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """One tracked face in one frame.

    Attributes:
        landmarks: (N, 3) float32. x, y in pixels of the frame the face was tracked in; z is depth
            relative to the face centre in the same pixel scale (MediaPipe's z times frame width),
            smaller is nearer the camera. N = 478 for ``mediapipe478``, 68 for ``ibug68``.
        blendshapes: (52,) float32 in [0, 1], in ``BLENDSHAPE_NAMES`` order (derived from geometry
            by trackers that have no blendshape model).
        rotation: (3,) float32 yaw, pitch, roll in degrees; 0 is a frontal face. Yaw is positive
            when the face turns to the image's left, pitch positive when it looks up, roll
            positive when the head tilts clockwise in the image.
        translation: (3,) float32 head translation (tracker units; only differences are used).
        au: (20,) float32 FACEGAN vector: 17 AU intensities in [0, 5] (``AU_NAMES``) then
            yaw, pitch, roll in degrees.
        topology: Which landmark set ``landmarks`` is, one of ``TOPOLOGIES``.
        frame_size: (width, height) of the frame in pixels.
        score: Detection confidence in [0, 1] (1.0 when the tracker gives none).
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    au: np.ndarray
    topology: str
    frame_size: tuple[int, int]
    score: float = 1.0

    def blendshape(self, name: str) -> float:
        """Value of one blendshape by its MediaPipe name."""
        return float(self.blendshapes[BLENDSHAPE_NAMES.index(name)])

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks in pixels."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        """Area of ``bbox`` in square pixels; trackers sort faces by it, largest first."""
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)
