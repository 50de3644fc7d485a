"""The face-alignment tracker (``--tracker face-alignment``, the ``[fan]`` extra): 68 iBUG points.

face-alignment (Bulat and Tzimiropoulos's FAN) gives landmarks only, so the head pose comes from
``cv2.solvePnP`` against a generic 3-D face, and the blendshapes and AUs from the landmarks'
geometry (``blendshapes_from_ibug68``). The package is imported only when this tracker is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from facepaint.engine.errors import BackendUnavailable, FacepaintError, ModelError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.trackers.blendshapes import (
    angles_from_rotation,
    au_vector,
    blendshapes_from_ibug68,
)
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import check_image
from facepaint.plugins.trackers.smoothing import StreamFollower, TrackSmoother

# A generic face in centimetres (outer eye corners 9 cm apart), origin at the nose bridge, axes as
# OpenCV's camera for a frontal face (x right, y down, z away from the camera). Only points that
# expressions do not move are listed: upper jaw line, nose, eye corners. Averaged from MediaPipe's
# meshes of four frontal faces (obama, biden2, lp_s42, lp_d18) and made left-right symmetric.
# fmt: off
_GENERIC_FACE_CM: dict[int, tuple[float, float, float]] = {
    1: (-7.16, 2.62, 7.96), 2: (-7.06, 4.21, 7.95), 14: (7.06, 4.21, 7.95), 15: (7.16, 2.62, 7.96),
    27: (0.00, 0.00, 0.00), 28: (0.00, 1.47, -1.05), 29: (0.00, 2.80, -2.28), 30: (0.00, 3.67, -2.57),
    31: (-1.46, 4.62, -0.32), 32: (-0.93, 4.96, -0.53), 33: (0.00, 5.04, -0.71),
    34: (0.93, 4.96, -0.53), 35: (1.46, 4.62, -0.32),
    36: (-4.50, 0.32, 2.41), 39: (-1.83, 0.51, 1.87), 42: (1.83, 0.51, 1.87), 45: (4.50, 0.32, 2.41),
}
# fmt: on
_RIGID = np.array(list(_GENERIC_FACE_CM), np.intp)
_MODEL_POINTS = np.array(list(_GENERIC_FACE_CM.values()), np.float64)
# OpenCV's camera (y down, z forward) to the y-up, z-to-viewer frame of angles_from_rotation.
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])
_FACE_SIZE_CM = 15.0


class LandmarkNetwork(Protocol):
    """What FanTracker needs of ``face_alignment.FaceAlignment`` (tests pass a stand-in)."""

    def get_landmarks_from_image(self, image: np.ndarray) -> list[np.ndarray] | None:
        """(68, 2) or (68, 3) landmarks in pixels per face found in an RGB image, or None."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def default_network(config: TrackerConfig) -> LandmarkNetwork:
    """Build face-alignment's 2-D FAN on ``config.device`` (downloads its weights on first use).

    Raises:
        BackendUnavailable: When face-alignment is not installed, or CUDA is asked for but absent.
        ModelError: When its weights cannot be downloaded (no network, server error).
    """
    try:
        import face_alignment
    except ImportError:
        raise BackendUnavailable(
            "--tracker face-alignment needs the face-alignment package; run `pip install 'facepaint-live[fan]'`"
        ) from None
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"tracker device '{config.device}' asked for, but torch sees no CUDA GPU; use device 'cpu'"
            )
    kwargs: dict[str, Any] = {"device": config.device, "flip_input": False}
    if "compile" in inspect.signature(face_alignment.FaceAlignment).parameters:
        # face-alignment >= 1.5 torch.compiles by default: half a minute before the first frame.
        kwargs["compile"] = False
    try:
        return face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
    except OSError as exc:
        # torch.hub's download raises urllib's URLError / HTTPError (OSErrors) when offline.
        raise ModelError(
            f"face-alignment could not download its weights ({_one_line(exc)}); run it once online "
            "so torch.hub caches them, or use --tracker mediapipe"
        ) from None


def head_pose(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Head rotation and translation from 68 landmarks, by PnP against a generic face.

    Args:
        points: (68, 2 or 3) landmarks in pixels (z is not used).
        width: Frame width in pixels.
        height: Frame height in pixels.

    Returns:
        (3,) float32 yaw, pitch, roll in degrees (``FaceTrack``'s convention) and (3,) float32
        translation in cm (x right, y up, z towards the viewer, like MediaPipe's).
    """
    focal = float(max(width, height))  # a ~55 degree field of view, typical of webcams
    image_points = np.ascontiguousarray(points[_RIGID, :2], np.float64)
    # The principal point is put on the face so that a face that looks frontal in the image has
    # zero angles wherever it is in the frame (as MediaPipe's pose has); with the true centre, a
    # frontal-looking face near the top of a portrait came out pitched 15 degrees down.
    centre = image_points.mean(axis=0)
    camera = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])
    # SQPnP finds the global optimum without an initial guess, so it never fails to converge.
    _, rvec, tvec = cv2.solvePnP(_MODEL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    rotation_cv, _ = cv2.Rodrigues(rvec)
    if rotation_cv[2, 2] < 0.0:
        # The rigid points are nearly planar, so their mirror pose (the head turned away and
        # upside down) can fit about as well and SQPnP sometimes returns it: 2 frames in 150 of
        # a talking clip showed a 180-degree flip. Refine from a frontal face at its distance.
        rvec = np.zeros((3, 1))
        tvec = np.array([[0.0], [0.0], [float(np.linalg.norm(tvec))]])
        _, rvec, tvec = cv2.solvePnP(_MODEL_POINTS, image_points, camera, None, rvec, tvec,
                                     useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        rotation_cv, _ = cv2.Rodrigues(rvec)
    angles = angles_from_rotation(_CV_TO_GL @ rotation_cv @ _CV_TO_GL)
    # Back to the frame's own camera: shift by where the face's centre lies off the optical axis.
    tvec = tvec.reshape(3)
    tvec[:2] += (centre - [width / 2.0, height / 2.0]) * tvec[2] / focal
    return angles, (_CV_TO_GL @ tvec).astype(np.float32)


class FanTracker:
    """Tracks 68 iBUG landmarks with face-alignment (``--tracker face-alignment``).

    Same modes as ``MediaPipeTracker``: image mode (``timestamp_ms=None``) reports up to
    ``config.max_faces`` faces; video mode follows the largest face and smooths it. FAN has no
    temporal tracking of its own, so every frame is detected afresh.

    Args:
        config: Tracker settings (``device`` picks the torch device).
        network_factory: Builds the landmark network from ``config``; ``default_network`` unless
            given (tests pass a stand-in with the same interface).

    Raises:
        BackendUnavailable: When face-alignment is not installed.
        ModelError: When its weights cannot be downloaded.
    """

    topology = "ibug68"

    def __init__(
        self,
        config: TrackerConfig,
        network_factory: Callable[[TrackerConfig], LandmarkNetwork] | None = None,
    ) -> None:
        self.config = config
        self._network: LandmarkNetwork | None = (network_factory or default_network)(config)
        smoother = TrackSmoother(
            config.min_cutoff, config.beta, config.d_cutoff, au_vector, translation_scale=_FACE_SIZE_CM
        )
        self._stream = StreamFollower(smoother if config.smoothing else None)

    @property
    def frames_without_face(self) -> int:
        """Video-mode frames in which no face was found."""
        return self._stream.frames_without_face

    def __enter__(self) -> FanTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the network; later calls do nothing."""
        self._network = None

    def reset(self) -> None:
        """Forget the stream: the next video frame may use any timestamp and is not smoothed."""
        self._stream.reset()

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[FaceTrack]:
        """Find faces in one RGB frame, as ``MediaPipeTracker.track`` does (68 points each)."""
        if self._network is None:
            raise FacepaintError("this FanTracker is closed; create a new one")
        image = check_image(image)
        if timestamp_ms is not None:
            timestamp_ms = self._stream.check_timestamp(timestamp_ms)
        height, width = image.shape[:2]
        found = self._network.get_landmarks_from_image(image) or []
        faces = [_face(points, width, height) for points in found]
        faces.sort(key=lambda face: face.area, reverse=True)
        if timestamp_ms is None:
            return faces[: self.config.max_faces]
        return self._stream.follow(faces, timestamp_ms)


def _face(points: np.ndarray, width: int, height: int) -> FaceTrack:
    """One FaceTrack from FAN's (68, 2) or (68, 3) landmarks; z is 0 for 2-D landmarks."""
    points = np.asarray(points, np.float32)
    if points.shape not in ((68, 2), (68, 3)):
        raise ModelError(f"face-alignment returned landmarks of shape {points.shape}, expected (68, 2) or (68, 3)")
    landmarks = np.zeros((68, 3), np.float32)
    landmarks[:, : points.shape[1]] = points
    blendshapes = blendshapes_from_ibug68(landmarks)
    rotation, translation = head_pose(landmarks, width, height)
    return FaceTrack(
        landmarks=landmarks,
        blendshapes=blendshapes,
        rotation=rotation,
        translation=translation,
        au=au_vector(blendshapes, rotation),
        topology="ibug68",
        frame_size=(width, height),
        score=1.0,
    )
