"""Checksums of model files (the one sha256 helper every loader uses: shipped weights, the
landmarker model, engine provenance) and the user cache folder compiled models go to."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks.

    Cached per (path, size, modification time), so a model opened by several sessions of one
    process is hashed once and an edited file is hashed again.
    """
    stat = os.stat(path)
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns, chunk)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int, chunk: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """The user's cache folder of this program: ``$FACEPAINT_CACHE/facepaint-live``, else under
    ``$XDG_CACHE_HOME`` or ``~/.cache`` (compiled models, TensorRT-RTX kernels)."""
    root = os.environ.get("FACEPAINT_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "facepaint-live"
