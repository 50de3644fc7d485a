"""A second motion judge, independent of the tracker that drives the engine: dlib's 68 landmarks.

MediaPipe both drives the engine and judges its output, so a fault they share (or a warp tuned to
MediaPipe) could pass unseen. This judge uses another landmark network (dlib's HOG detector and
68-point regression tree, the ``[eval]`` extra) and reads each signal as continuous geometry, with
no learned thresholds: a blendshape classifier reports 0 for a mouth that moves but stays under its
smile threshold, a distance does not.

Signals (``GEOMETRY_SIGNALS``), per frame, lengths in inter-ocular distances:
- jaw: inner-lip gap; blink: minus the mean eye aspect ratio (so closing raises it);
- smile: lip corners raised above the mouth centre plus mouth width, each over its typical range;
- yaw, pitch, roll: head pose by PnP against a generic face (``FaceTrack``'s sign convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepaint.engine.errors import BackendUnavailable
from facepaint.runtime.evaluation.identity import INSTALL_HINT, largest_face

GEOMETRY_SIGNALS = ("jaw", "blink", "smile", "yaw", "pitch", "roll")
GEOMETRY_MODEL = "dlib shape_predictor_68_face_landmarks, HOG detector, continuous geometry"
# Typical ranges in inter-ocular units (neutral .. full smile), so both smile terms weigh alike.
_CORNER_RANGE = 0.14
_WIDTH_RANGE = 0.30


@dataclass(frozen=True)
class GeometryJudgeConfig:
    """How faces are found.

    Attributes:
        detect_max_side: Frames are shrunk so their longer side is at most this before HOG
            detection (every frame is judged: ~10 ms a frame at 320 px, detection and landmarks;
            the landmarks themselves are placed on the full-resolution frame).
    """

    detect_max_side: int = 320

    def __post_init__(self) -> None:
        if self.detect_max_side < 64:
            raise ValueError(f"detect_max_side must be >= 64, got {self.detect_max_side}")


class GeometryJudge:
    """Measures ``GEOMETRY_SIGNALS`` of the largest face in RGB frames.

    Args:
        config: Detection settings.

    Raises:
        BackendUnavailable: When dlib or face_recognition_models is not installed.
    """

    def __init__(self, config: GeometryJudgeConfig | None = None) -> None:
        self.config = config or GeometryJudgeConfig()
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise BackendUnavailable(
                f"the geometry judge needs dlib and its models ({exc.name} is missing); "
                f"install them with: {INSTALL_HINT}") from None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(models.pose_predictor_model_location())

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(68, 2) float64 iBUG landmarks of the largest face, or None when none is found."""
        rgb = np.ascontiguousarray(rgb)  # dlib takes C-contiguous arrays only
        rect = largest_face(self._dlib, self._detector, rgb, self.config.detect_max_side)
        if rect is None:
            return None
        shape = self._shape(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)

    def measure(self, rgb: np.ndarray) -> np.ndarray | None:
        """(6,) float64 ``GEOMETRY_SIGNALS`` of the largest face, or None when none is found."""
        points = self.landmarks(rgb)
        if points is None:
            return None
        return geometry_signals(points, rgb.shape[1], rgb.shape[0])


def geometry_signals(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(6,) ``GEOMETRY_SIGNALS`` of one face's 68 iBUG landmarks (pixels) in a frame of that size."""
    from facepaint.plugins.trackers.blendshapes import eye_aspect_ratio, face_frame
    from facepaint.plugins.trackers.fan import head_pose

    p = np.asarray(points, np.float64)[:, :2]
    q = face_frame(p)  # eyes level, y down, inter-ocular units
    mouth_mid = (q[62, 1] + q[66, 1]) / 2.0
    corners = (2.0 * mouth_mid - q[48, 1] - q[54, 1]) / 2.0
    width_ = q[54, 0] - q[48, 0]
    angles, _ = head_pose(p, width, height)
    return np.array([q[66, 1] - q[62, 1],
                     -(eye_aspect_ratio(q[36:42]) + eye_aspect_ratio(q[42:48])) / 2.0,
                     corners / _CORNER_RANGE + width_ / _WIDTH_RANGE,
                     *angles], np.float64)

