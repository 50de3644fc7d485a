"""The media types facepaint-live reads and writes: one table, every suffix list derived from it.

The lists differ on purpose, and only here: OpenCV and PyAV read more kinds of file than the file
sink writes (it writes H.264 into three containers and PNG/JPEG stills).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaType:
    """One file suffix.

    Attributes:
        suffix: Lower case, with the dot.
        kind: ``image`` or ``video``.
        writable: Whether the file sink writes it (``--output``); every suffix here is read.
        container: PyAV's container format name of a written video.
    """

    suffix: str
    kind: str
    writable: bool = False
    container: str | None = None


MEDIA_TYPES: tuple[MediaType, ...] = (
    MediaType(".png", "image", writable=True),
    MediaType(".jpg", "image", writable=True),
    MediaType(".jpeg", "image", writable=True),
    MediaType(".bmp", "image"),
    MediaType(".webp", "image"),
    MediaType(".tif", "image"),
    MediaType(".tiff", "image"),
    MediaType(".mp4", "video", writable=True, container="mp4"),
    MediaType(".mkv", "video", writable=True, container="matroska"),
    MediaType(".mov", "video", writable=True, container="mov"),
    MediaType(".avi", "video"),
    MediaType(".webm", "video"),
    MediaType(".m4v", "video"),
)


def suffixes(kind: str, *, writable: bool = False) -> tuple[str, ...]:
    """The suffixes of ``kind`` that are read (``writable``: that the file sink writes), in table order."""
    return tuple(m.suffix for m in MEDIA_TYPES if m.kind == kind and (m.writable or not writable))


def kind_of(path: str) -> str | None:
    """``image``, ``video`` or None (no known suffix) for a file name."""
    lower = path.lower()
    return next((m.kind for m in MEDIA_TYPES if lower.endswith(m.suffix)), None)


READ_IMAGES = suffixes("image")
READ_VIDEOS = suffixes("video")
WRITE_IMAGES = suffixes("image", writable=True)
WRITE_VIDEOS = suffixes("video", writable=True)
CONTAINERS = {m.suffix: m.container for m in MEDIA_TYPES if m.container is not None}
