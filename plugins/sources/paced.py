"""A video file played at its own frame rate as a stand-in camera (``--cam clip.mp4``).

A camera does not wait for its reader: frame ``i`` becomes available at ``start + i / fps`` and is
overwritten by the next one. This source reproduces that. It sleeps until a frame is due, stamps it
with the moment it became available (so latency counts any time the reader was late), and skips it
when the reader comes back after the next frame is already due. That makes a file a faithful,
repeatable test of the live pipeline: a slow stage cannot slow the clip down, only lose frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from facepaint.engine.errors import SourceError
from facepaint.plugins.base import Frame

ClipOpener = Callable[[str], Any]


def _open_video(path: str) -> Any:
    from facepaint.plugins.sources.video import VideoSource

    return VideoSource(path)


class PacedFileSource:
    """Frames of a video file released on the clip's clock, like a camera.

    Attributes:
        fps: The clip's frame rate.
        size: (width, height) of the clip.
        frame_count: Always None (a camera has no known length, even when not looping).
        live: Always True.
        dropped: Frames skipped because the reader was not ready when the next one was due.
        delivered: Frames yielded.
    """

    frame_count: int | None = None
    live = True

    def __init__(
        self,
        path: str,
        *,
        loop: bool = False,
        opener: ClipOpener | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Open the clip to read its rate and size.

        Args:
            path: Video file.
            loop: Start again at the end instead of stopping.
            opener: Opens ``path`` as a non-live ``Source`` with ``rewind()`` (start the next
                iteration from the first frame; default: the PyAV ``VideoSource``).
            clock: Time in seconds; ``time.perf_counter`` so stamps compare with the rest of the run.

        Raises:
            SourceError: When the clip reports no usable frame rate.
        """
        self.path = path
        self.loop = loop
        self.dropped = 0
        self.delivered = 0
        self._opener = opener or _open_video
        self._clock = clock
        self._closing = threading.Event()
        self._closed = False
        self._clip = self._opener(path)
        self.fps = float(self._clip.fps)
        self.size = tuple(self._clip.size)
        if not self.fps > 0:
            self._clip.close()
            raise SourceError(f"{path}: the clip reports no frame rate ({self.fps}); re-encode it at a fixed rate")

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames on the clip's clock until the end (or forever with ``loop``) or ``close()``."""
        period = 1.0 / self.fps
        start = self._clock()
        slot = 0  # frame slots since start, across loops: slot / fps is the clip clock
        clip = self._clip if self._clip is not None else self._opener(self.path)
        self._clip = None
        try:
            while not self._closing.is_set():
                played = 0
                for frame in clip:
                    due = start + slot * period
                    slot += 1
                    played += 1
                    if not self._wait_until(due, period):
                        continue
                    if self._closing.is_set():
                        return
                    yield Frame(image=frame.image, index=self.delivered, pts=due - start, captured_at=due)
                    self.delivered += 1
                if not self.loop or played == 0:
                    return
                clip.rewind()  # one open file for the whole run: no re-probe, no new decoder threads
        finally:
            clip.close()

    def _wait_until(self, due: float, period: float) -> bool:
        """Sleep until ``due``; False when the next frame is already due (this one was overwritten)."""
        now = self._clock()
        if now >= due + period:
            self.dropped += 1
            return False
        if now < due:
            # An Event wait rather than sleep, so close() interrupts a long wait at once.
            self._closing.wait(due - now)
        return True

    def close(self) -> None:
        """Stop the clock and release the clip; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._clip is not None:
            self._clip.close()
            self._clip = None

    def __enter__(self) -> PacedFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
