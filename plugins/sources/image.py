"""Still image source (one frame) and the image reader the portrait loader shares."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.plugins.base import Frame

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: str | Path, what: str = "image") -> np.ndarray:
    """Read an image file into (H, W, 3) uint8 RGB (EXIF orientation applied, alpha dropped).

    Args:
        path: The file.
        what: How the file is named in error messages (``"source portrait"``).

    Raises:
        InputError: When the file is missing, is a folder, cannot be read or is not an image.
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {path} not found; check the path (a .jpg or .png file)")
    if not p.is_file():
        raise InputError(f"{what} {path} is not a file; give an image file such as .jpg or .png")
    try:
        data = np.fromfile(p, dtype=np.uint8)  # cv2.imread cannot report why it failed; this can
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror}); check its permissions") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise InputError(f"{what} {path} is not an image OpenCV can read; give a .jpg or .png file")
    return np.ascontiguousarray(bgr[:, :, ::-1])


class ImageSource:
    """A still image as a one-frame stream (``--driving face.jpg``).

    Attributes:
        path: The file.
        fps: Nominal rate (25), used only when a still is written as a one-frame video.
        size: (width, height).
        frame_count: 1.
        live: False.

    Args:
        path: The image file.

    Raises:
        InputError: When the file is missing, unreadable or not an image.
    """

    rate = Fraction(25)
    fps = 25.0
    rate = Fraction(25)
    frame_count = 1
    audio = None
    live = False
    audio = None

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._image = read_image(path, "driving image")
        self.size = (int(self._image.shape[1]), int(self._image.shape[0]))

    def __iter__(self) -> Iterator[Frame]:
        """Yield the image once."""
        yield Frame(image=self._image, index=0, pts=0.0, captured_at=time.perf_counter())

    def close(self) -> None:
        """Nothing to release (the image is in memory); present for the Source protocol."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
