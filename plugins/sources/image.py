"""Still image source (one frame) and the image reader the portrait loader shares."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.plugins.base import Frame
from facepaint.plugins.sources.native_stderr import captured_stderr

# Every frame is rendered at the portrait's full resolution: a 48 MP phone photo still works (slowly),
# a 12000x12000 scan would need gigabytes per queued frame and an encoder beyond H.264's levels.
MAX_PIXELS = 50_000_000


def read_image(path: str | Path, what: str = "image") -> np.ndarray:
    """Read an image file into (H, W, 3) uint8 RGB (EXIF orientation applied, alpha dropped).

    Args:
        path: The file.
        what: How the file is named in error messages (``"source portrait"``).

    Raises:
        InputError: When the file is missing, is a folder, cannot be read, is not an image or has
            more than ``MAX_PIXELS`` pixels.
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
    if not data.size:
        raise InputError(f"{what} {path} is empty (0 bytes); give a .jpg or .png file")
    _check_pixels(declared_size(data.tobytes()[:1 << 16]), path, what)  # before decoding a bomb
    with captured_stderr() as native:  # libpng/libjpeg print to fd 2; fold that into one line
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        why = f" ({native.first_line})" if native.first_line else ""
        raise InputError(f"{what} {path} is not an image OpenCV can read{why}; give a .jpg or .png file")
    _check_pixels((bgr.shape[1], bgr.shape[0]), path, what)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _check_pixels(size: tuple[int, int] | None, path: str | Path, what: str) -> None:
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        width, height = size
        raise InputError(f"{what} {path} is too large ({width}x{height}, {width * height / 1e6:.0f} MP; at most "
                         f"{MAX_PIXELS / 1e6:.0f} MP); downscale it, for example to 2048 px on the long side")


def declared_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG or JPEG header declares it, None for other formats or a header
    that cannot be parsed; read before decoding so a small file cannot claim gigapixels unseen."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 33:
        # Only a header whose checksum holds: a corrupt one is for the decoder to report as such.
        if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
            return None
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if not head.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 9 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker, length = head[pos + 1], int.from_bytes(head[pos + 2:pos + 4], "big")
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(head[pos + 7:pos + 9], "big"), int.from_bytes(head[pos + 5:pos + 7], "big")
        pos += 2 + length
    return None


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
