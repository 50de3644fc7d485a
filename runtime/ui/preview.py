"""The page's preview: a newest-frame tap after the sinks, encoded on its own thread when asked.

The output thread only stores a reference to the newest frame (no copy, no resize, no encode), so
the virtual camera and the recording keep their full rate whatever the page does. The encoder
thread shrinks the newest driving and output frames to at most ``MAX_SIDE`` pixels, puts them side
by side and JPEG-encodes them, and only while a page is waiting for a frame newer than the one it
drew: a closed tab costs nothing, and a slow tab gets fewer frames, never older ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.plugins.base import Frame

MAX_SIDE = 640  # the longest side of each preview panel, in pixels
JPEG_QUALITY = 80  # a visible difference from 95 only on still hair; half the bytes


@dataclass(frozen=True)
class PreviewFrame:
    """One encoded preview: ``seq`` grows by one per encoded frame; ``captured_at`` is the
    driving frame's capture time (perf_counter clock) for the page's delay figure."""

    seq: int
    jpeg: bytes
    captured_at: float
    encoded_at: float


def shrink(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``image`` scaled down so its longest side is at most ``max_side`` (never scaled up)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    # Linear, not area: half the encoder thread's time (2 vs 5 ms a frame here) for a preview.
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)


def side_by_side(driving: np.ndarray | None, output: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The driving frame (when given) left of the output, both shrunk, at the output's height."""
    out = shrink(output, max_side)
    if driving is None:
        return out
    h = out.shape[0]
    dh, dw = driving.shape[:2]
    drive = cv2.resize(driving, (max(1, round(dw * h / dh)), h), interpolation=cv2.INTER_LINEAR)
    return np.concatenate([drive, out], axis=1)


class PreviewTap:
    """A sink that keeps the newest frame and encodes it for the page on its own thread.

    Args:
        max_side: Longest side of each panel.
        quality: JPEG quality.
    """

    name = "preview"

    def __init__(self, max_side: int = MAX_SIDE, quality: int = JPEG_QUALITY) -> None:
        self.max_side, self.quality = max_side, quality
        self._cond = threading.Condition()
        self._newest: Frame | None = None
        self._driving: np.ndarray | None = None
        self._written = 0  # frames written so far (the encoder skips work when nothing is new)
        self._encoded_from = 0
        self._wanted = False
        self._last: PreviewFrame | None = None
        self._closed = False
        self.encoded = 0
        self._thread = threading.Thread(target=self._encode_loop, name="ui-preview", daemon=True)
        self._thread.start()

    # ---- the pipeline's side (output thread, infer thread): store a reference, nothing more ----

    def drive(self, image: np.ndarray) -> None:
        """The newest driving image (shown left of the output)."""
        self._driving = image

    def write(self, frame: Frame) -> None:
        """The newest output frame."""
        with self._cond:
            self._newest = frame
            self._written += 1
            if self._wanted:
                self._cond.notify_all()

    def close(self) -> None:
        """A run ending does not end the tap: it outlives runs (``shutdown`` ends it)."""

    def abort(self) -> None:
        """As ``close``."""

    def shutdown(self) -> None:
        """End the encoder thread and wake every waiting page."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ---- the page's side ----

    def next_after(self, seq: int, timeout: float = 1.0) -> PreviewFrame | None:
        """The first preview newer than ``seq``, waiting up to ``timeout`` s (None: none came)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                if self._last is not None and self._last.seq > seq:
                    return self._last
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._wanted = True
                self._cond.notify_all()
                self._cond.wait(left)
        return None

    def _encode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not (self._wanted and self._written > self._encoded_from):
                    self._cond.wait()
                if self._closed:
                    return
                frame, driving, self._encoded_from = self._newest, self._driving, self._written
                self._wanted = False
            if frame is None:
                continue
            panel = side_by_side(driving, frame.image, self.max_side)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(panel, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:  # cv2 cannot fail on a uint8 RGB array; skip the frame rather than stop the preview
                continue
            with self._cond:
                self.encoded += 1
                self._last = PreviewFrame(self.encoded, data.tobytes(), frame.captured_at, time.perf_counter())
                self._cond.notify_all()
