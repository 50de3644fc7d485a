"""Load the source portrait, track it once in image mode and pick the face to animate."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.engine.errors import InputError, NoFaceError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Tracker, load_plugin
from facepaint.plugins.sources.image import read_image
from facepaint.runtime.config import AppConfig


@dataclass(frozen=True, eq=False)
class Portrait:
    """The source portrait, ready for ``ReenactmentEngine``.

    Attributes:
        path: The image file.
        image: (H, W, 3) uint8 RGB, at the file's full resolution or fitted to the run's output
            frame (``fit_to_frame``).
        face: The chosen face.
        faces: Every face found, largest first.
        face_index: Index of ``face`` in ``faces``.
    """

    path: str
    image: np.ndarray
    face: FaceTrack
    faces: tuple[FaceTrack, ...]
    face_index: int


def pick_face(faces: list[FaceTrack], face_index: int | None, path: str) -> tuple[FaceTrack, int]:
    """Choose the face to animate.

    Args:
        faces: Faces found in the portrait, largest first.
        face_index: Which one (None: the largest).
        path: The portrait file, for messages.

    Returns:
        The face and its index.

    Raises:
        NoFaceError: When ``faces`` is empty.
        InputError: When ``face_index`` is out of range (the message says how many were found).
    """
    if not faces:
        raise NoFaceError(f"no face found in the source portrait {path}; use a photo with a clearly "
                          "visible, roughly frontal face")
    index = 0 if face_index is None else face_index
    if index >= len(faces):
        found = f"{len(faces)} face" + ("s" if len(faces) != 1 else "")
        raise InputError(f"--face-index {index} is out of range: {found} found in {path} "
                         f"(use 0..{len(faces) - 1}, 0 = largest)")
    return faces[index], index


def read_portrait(config: AppConfig) -> np.ndarray:
    """The source portrait as RGB, read before anything heavy is opened.

    Raises:
        InputError: Missing, unreadable or not an image.
    """
    return read_image(config.source, "source portrait")


def load_portrait(config: AppConfig, tracker: Tracker | None = None, image: np.ndarray | None = None) -> Portrait:
    """Read ``config.source``, fit it to the output frame, track it as a still and pick ``config.face_index``.

    The portrait is prepared at the size it is shown at (``config.frame_size``): a render costs per
    frame what the output's pixels cost, not what the photo's do, and everything prepared from it
    once (crop, background, masks) is made at that size too.

    Args:
        config: The run's configuration (``source``, ``face_index``, ``tracker``).
        tracker: A tracker to reuse; None opens one from ``config.tracker`` and closes it after.
        image: The portrait already read by ``read_portrait`` (None: read it here).

    Returns:
        The portrait with its chosen face.

    Raises:
        InputError: Missing, unreadable or non-image source, or a bad ``face_index``.
        NoFaceError: When the portrait has no face.
    """
    if image is None:
        image = read_portrait(config)
    image = fit_to_frame(image, config.frame_size)
    if tracker is None:
        with contextlib.closing(load_plugin("facepaint.trackers", config.tracker.name)(config.tracker)) as own:
            faces = list(own.track(image, None))
    else:
        faces = list(tracker.track(image, None))
    face, index = pick_face(faces, config.face_index, config.source)
    return Portrait(path=config.source, image=image, face=face, faces=tuple(faces), face_index=index)


def fit_to_frame(image: np.ndarray, frame: tuple[int, int] | None) -> np.ndarray:
    """``image`` scaled down to the largest size that fits inside ``frame`` (width, height) with its
    aspect kept, as the output letterboxes it; never enlarged (None, or a frame it already fits: as
    it is). Area resampling: the downscale keeps the detail a smaller frame can show, without aliasing.
    """
    if frame is None:
        return image
    h, w = image.shape[:2]
    scale = min(frame[0] / w, frame[1] / h)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
