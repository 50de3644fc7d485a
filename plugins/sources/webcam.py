"""Webcam source: an OpenCV capture device by index or path, yielding RGB frames stamped at capture.

A camera is a live source: it never waits for the consumer, so the pipeline drops frames downstream
instead of queueing them. A camera that disappears mid-run is retried for ``retry_s`` seconds (USB
hiccups, a driver reset) before the run stops with one ``SourceError`` line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import SourceError
from facepaint.plugins.base import Frame
from facepaint.plugins.media import READ_VIDEOS
from facepaint.plugins.sources.native_stderr import captured_stderr

CaptureFactory = Callable[[int | str], Any]

READ_TIMEOUT_MS = 1000


def parse_cam(spec: str) -> int | str:
    """Interpret the ``--cam`` argument.

    Args:
        spec: What the user gave: ``0``, ``/dev/video2`` or ``clip.mp4``.

    Returns:
        An int for a camera index; the string itself for a device path or an existing video file
        (``is_video_file`` tells the two apart).

    Raises:
        SourceError: When ``spec`` is neither an index, a device path nor an existing file.
    """
    text = spec.strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if index < 0:
            raise SourceError(f"--cam index must be >= 0, got {index}")
        return index
    if text.startswith("/dev/"):
        return text
    if Path(text).is_file():
        return text
    hint = "a video file" if text.lower().endswith(READ_VIDEOS) else "a file or device"
    raise SourceError(
        f"--cam '{spec}' is not a camera index (0, 1, ...), a device path (/dev/videoN) or an existing "
        f"video file; {hint} of that name was not found"
    )


def is_video_file(cam: int | str) -> bool:
    """True when a parsed ``--cam`` value names a video file to be played as a camera."""
    return isinstance(cam, str) and not cam.startswith("/dev/")


def _open_cv2(device: int | str) -> Any:
    import cv2

    # A missing camera makes OpenCV's backends log a page of native warnings before it reports
    # failure (its bundled FFmpeg past OpenCV's log level, straight to fd 2); our SourceError
    # already says what went wrong and how to fix it.
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with captured_stderr():
            return cv2.VideoCapture(device)
    finally:
        cv2.utils.logging.setLogLevel(previous)


class WebcamSource:
    """Frames from a webcam through ``cv2.VideoCapture`` (BGR converted to RGB).

    Attributes:
        fps: The rate the driver reports (30 when it reports nothing usable).
        size: (width, height) of the frames.
        frame_count: Always None (a camera has no end).
        live: Always True.
        retries: How many times the camera was reopened after a failed read.
        dropped: Always 0: frames the camera driver discards while the reader is busy are not
            visible through OpenCV (the live pipeline counts its own drops).
    """

    frame_count: int | None = None
    live = True
    dropped = 0

    def __init__(
        self,
        device: int | str = 0,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        retry_s: float = 3.0,
        capture_factory: CaptureFactory | None = None,
    ) -> None:
        """Open the camera.

        Args:
            device: Camera index (0 = first) or device path (``/dev/video0``).
            size: Requested (width, height); the driver may pick another, ``size`` says what it did.
            fps: Requested frame rate.
            retry_s: How long to keep reopening a camera that stopped delivering frames.
            capture_factory: Opens a capture object with the ``cv2.VideoCapture`` interface (tests).

        Raises:
            SourceError: When the camera cannot be opened (the message names the fix).
        """
        self.device = device
        self.retry_s = retry_s
        self.retries = 0
        self._factory = capture_factory or _open_cv2
        self._request = (size, fps)
        self._closed = False
        self._lock = threading.Lock()
        self._cap = self._open()
        if self._cap is None:
            raise SourceError(f"cannot open camera {device!r}; {_open_hint(device)}")
        self.size, self.fps = self._probe(self._cap)

    def _open(self) -> Any | None:
        cap = self._factory(self.device)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        size, fps = self._request
        import cv2

        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        # One buffered frame at most: an older frame in the driver's queue is latency.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        # An unplugged camera can block a read for 10 s (V4L2's default); fail fast and retry instead.
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS)
        return cap

    @staticmethod
    def _probe(cap: Any) -> tuple[tuple[int, int], float]:
        import cv2

        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        # Many drivers report 0 (or absurd values) for the rate; 30 is what webcams deliver.
        return (width, height), (fps if 1.0 <= fps <= 240.0 else 30.0)

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until ``close()``.

        Raises:
            SourceError: When the camera stays unreadable for ``retry_s`` seconds.
        """
        t0 = None
        index = 0
        while not self._closed:
            image = self._read()
            if image is None:
                if self._closed:
                    return
                self._recover()
                continue
            now = time.perf_counter()
            t0 = now if t0 is None else t0
            yield Frame(image=image, index=index, pts=now - t0, captured_at=now)
            index += 1

    def _read(self) -> np.ndarray | None:
        with self._lock:
            cap = self._cap
            if cap is None:
                return None
            ok, bgr = cap.read()
        if not ok or bgr is None:
            return None
        import cv2

        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _recover(self) -> None:
        """Reopen the camera until it delivers again, for at most ``retry_s`` seconds."""
        deadline = time.monotonic() + self.retry_s
        while not self._closed:
            with self._lock:
                if self._closed:  # close() ran meanwhile: do not reopen what it released
                    return
                if self._cap is not None:
                    self._cap.release()
                self._cap = self._open()
            if self._cap is not None and self._read() is not None:
                self.retries += 1
                return
            if time.monotonic() >= deadline:
                raise SourceError(
                    f"camera {self.device!r} stopped delivering frames and did not come back within "
                    f"{self.retry_s:g} s; check the cable or whether another program took the camera"
                )
            time.sleep(0.1)

    def close(self) -> None:
        """Release the camera; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def __enter__(self) -> WebcamSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_hint(device: int | str) -> str:
    if sys.platform.startswith("linux"):
        where = "ls /dev/video*" if isinstance(device, int) else f"ls -l {device}"
        return (
            f"check it is plugged in ({where}), that no other program uses it, and that you may read "
            "it (sudo usermod -aG video $USER, then log in again); pass another index with --cam N"
        )
    if sys.platform == "darwin":
        return "allow camera access for your terminal (System Settings > Privacy > Camera); try --cam 1"
    return "close other programs using the camera and allow camera access (Settings > Privacy > Camera)"
