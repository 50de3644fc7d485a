"""What the page may read and write: uploads (size-limited, type-checked) and the files it was given.

The page never names a file to read: it gets an id for each upload and each render result, and
``/api/file/{id}`` serves only those. Uploads land in the session's own folder under a name made
here (the client's name only lends its suffix), so no name from the page reaches the file system.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.errors import InputError
from facepaint.runtime.ui.recent import RecentPortraits

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # a minute of 1080p driving video; a portrait is far smaller
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
# The first bytes of each accepted video container (ISO BMFF at offset 4, EBML, RIFF).
_VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"))


class Files:
    """The uploads and results of one ``facepaint-live ui`` session, in ``root``.

    Args:
        root: A folder of this session's own (created if missing).
        recent: The recent portraits (None: this session's only, kept nowhere).
    """

    def __init__(self, root: Path, recent: RecentPortraits | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._served: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._recent = recent if recent is not None else RecentPortraits(None)

    @property
    def recent(self) -> list[str]:
        """The recent portraits that still exist, newest first."""
        return self._recent.paths()

    def serve(self, path: Path) -> str:
        """Allow the page to read ``path``; returns its id (the same one each time for a path)."""
        with self._lock:
            for file_id, served in self._served.items():
                if served == path:
                    return file_id
            file_id = secrets.token_urlsafe(12)
            self._served[file_id] = path
        return file_id

    def path(self, file_id: str) -> Path:
        """The file behind ``file_id``.

        Raises:
            InputError: An id this session did not hand out.
        """
        with self._lock:
            path = self._served.get(file_id)
        if path is None or not path.is_file():
            raise InputError("no such file; use a link the page gave you")
        return path

    def new_path(self, suffix: str) -> Path:
        """A fresh file name in this session's folder."""
        return self.root / f"{secrets.token_hex(8)}{suffix}"

    def save_upload(self, name: str, data: bytes) -> Path:
        """Check and store an uploaded image or video; returns where it was put.

        Raises:
            InputError: Too large, an unknown suffix, or content that is not what the suffix says.
        """
        if len(data) > MAX_UPLOAD_BYTES:
            raise InputError(f"upload too large ({len(data) // 2**20} MiB); the limit is "
                             f"{MAX_UPLOAD_BYTES // 2**20} MiB")
        suffix = Path(name).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
                raise InputError(f"upload {Path(name).name!r} is not a readable image")
        elif suffix in VIDEO_SUFFIXES:
            if not any(data[at:at + len(magic)] == magic for at, magic in _VIDEO_MAGIC):
                raise InputError(f"upload {Path(name).name!r} is not a video file")
        else:
            raise InputError(f"upload {Path(name).name!r}: use an image ({', '.join(IMAGE_SUFFIXES)}) "
                             f"or a video ({', '.join(VIDEO_SUFFIXES)})")
        path = self.new_path(suffix)
        path.write_bytes(data)
        return path

    def remember_portrait(self, path: str) -> None:
        """Put ``path`` first in the recent portraits (an upload of this session is kept)."""
        self._recent.add(path, self.root)


def cameras() -> list[str]:
    """The camera devices this machine shows (``/dev/video*`` on Linux; indexes elsewhere are
    typed by hand, as with ``--cam``)."""
    return sorted(str(p) for p in Path("/dev").glob("video*"))
