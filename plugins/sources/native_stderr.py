"""Capture what native decoders print straight to file descriptor 2 while they run.

libpng ("libpng error: ...") and libjpeg ("Corrupt JPEG data: ...") write to the process's stderr
from C, past Python's ``sys.stderr`` and OpenCV's log level. A bad image would then put a second,
unexplained line next to our one-line error. ``captured_stderr`` points fd 2 at a temporary file for
the duration of one decode and hands back what was written, so the caller can fold the first line
into its own message instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

# fd 2 belongs to the whole process: two captures at once would restore each other's descriptor.
_LOCK = threading.Lock()


class Captured:
    """What was written to fd 2 inside a ``captured_stderr`` block (``text`` is set on exit)."""

    text: str = ""

    @property
    def first_line(self) -> str:
        """The first non-empty line, stripped (empty when nothing was printed)."""
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")


@contextlib.contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Redirect fd 2 into a temporary file for the block; yields a ``Captured`` filled on exit.

    Anything another thread writes to stderr meanwhile is captured too, so keep the block to one
    native call. Falls back to no capture where fd 2 cannot be duplicated (no stderr at all).
    """
    captured = Captured()
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield captured
            return
        with tempfile.TemporaryFile(mode="w+b") as sink:
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                captured.text = sink.read().decode("utf-8", "replace")
