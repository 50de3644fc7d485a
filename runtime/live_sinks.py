"""Sinks wrappers of the live mode: a recording on the camera's clock, written off the live path.

The virtual camera must get each frame the moment it is ready; a video encoder is slower and
burstier (x264 at 1280x720 takes 5-20 ms a frame on two cores). ``BackgroundSink`` moves a sink onto
its own thread behind a drop-oldest queue, so encoding never delays the camera, and ``ClockedSink``
keeps the recording in real time when frames were dropped upstream.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from typing import Any

from facepaint.plugins.base import Frame, SinkContext
from facepaint.runtime.pipeline import name_os_thread
from facepaint.runtime.queues import DROP_OLDEST, END, Edge

# Frames the recorder may fall behind before the oldest is dropped: enough to absorb the encoder's
# bursts (x264 takes 5-20 ms a frame, 30-60 ms on a busy 2-core machine), at most a second at
# 25 fps and at most RECORD_BACKLOG_MB of frames. On a machine too busy for the encoder the
# backlog stays full for the rest of the run: at 25 frames of 2.7 MB (1280x720) that was 69 MB of
# resident memory, more than a two-hour call may grow in all (issue 24's soak), and a deeper
# backlog only delays the drops, it does not prevent them.
RECORD_BACKLOG = 25
RECORD_BACKLOG_MB = 24.0


def record_backlog(size: tuple[int, int]) -> int:
    """The recorder's backlog in frames for output frames of ``size`` (w, h), RGB."""
    frame_mb = size[0] * size[1] * 3 / 2**20
    return max(4, min(RECORD_BACKLOG, int(RECORD_BACKLOG_MB / frame_mb)))
_JOIN_TIMEOUT_S = 10.0
# Nice value of the recording thread (0 = normal, 19 = lowest): below the live stages.
RECORD_NICE = 10


class ClockedSink(SinkContext):
    """Puts frames on a constant-rate clock for a sink that numbers frames (a video file).

    A live run delivers fewer frames than the camera rate when a stage is slow. Written back to back
    into a 25 fps file, they would play too fast; a viewer of the virtual camera sees the last frame
    until the next one arrives, so the missing slots are filled with the previous frame. Two frames
    in one slot keep the first (the second is counted in ``merged``).

    Args:
        sink: The wrapped sink (``write`` / ``close`` / ``abort``).
        fps: The clock's rate.
    """

    def __init__(self, sink: Any, fps: float) -> None:
        self.sink, self.fps = sink, fps
        self.merged = 0
        self._slots = 0
        self._pts0: float | None = None
        self._last: Frame | None = None

    def write(self, frame: Frame) -> None:
        """Write ``frame`` into its slot, after repeating the previous frame over any gap."""
        self._pts0 = frame.pts if self._pts0 is None else self._pts0
        slot = round((frame.pts - self._pts0) * self.fps)
        if slot < self._slots:
            self.merged += 1
            return
        while self._last is not None and self._slots < slot:
            self.sink.write(self._last)
            self._slots += 1
        self.sink.write(frame)
        self._slots += 1
        self._last = frame

    def close(self) -> None:
        """Finish the wrapped sink."""
        self.sink.close()

    def abort(self) -> None:
        """Abort the wrapped sink."""
        self.sink.abort()


class BackgroundSink(SinkContext):
    """Runs ``sink.write`` on its own named thread behind a bounded drop-oldest queue.

    Args:
        sink: The wrapped sink.
        name: Thread name suffix (``facepaint-<name>``) and the queue's name.
        capacity: Frames that may wait before the oldest is dropped.

    Attributes:
        dropped: Frames dropped because the sink fell more than ``capacity`` frames behind.
    """

    def __init__(self, sink: Any, name: str, capacity: int = RECORD_BACKLOG) -> None:
        self.sink, self.name = sink, name
        self._abort = threading.Event()
        self._edge = Edge(f"output->{name}", capacity, DROP_OLDEST, self._abort)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"facepaint-{name}", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def dropped(self) -> int:
        """Frames dropped on the queue so far."""
        return self._edge.dropped

    def _run(self) -> None:
        name_os_thread(f"fp-{self.name}")
        _lower_priority()
        while True:
            item = self._edge.get()
            if item is END or self._abort.is_set():
                return
            try:
                self.sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the writer's thread
                self._error = exc
                return

    def write(self, frame: Frame) -> None:
        """Queue ``frame``.

        Raises:
            BaseException: The error the sink raised on an earlier frame (for example a full disk).
        """
        if self._error is not None:
            raise self._error
        self._edge.put(frame)

    def close(self) -> None:
        """Write what is queued, then close the sink (once).

        Raises:
            BaseException: The error the sink raised while writing, or while closing.
        """
        if self._closed:
            return
        self._closed = True
        self._edge.put(END)
        self._thread.join(_JOIN_TIMEOUT_S)
        if self._error is not None:
            self.sink.abort()
            raise self._error
        self.sink.close()

    def abort(self) -> None:
        """Drop what is queued and abort the sink (once)."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()
        self._edge.wake()
        self._thread.join(_JOIN_TIMEOUT_S)
        self.sink.abort()


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux: per-thread nice; threads it starts inherit it).

    The recording may lag by up to ``RECORD_BACKLOG`` frames; tracking and rendering may not. On a
    machine short of cores the encoder (and x264's worker threads, started from here on the first
    frame) should yield to them. Elsewhere, or when not permitted, priorities stay as they are.
    """
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None or not hasattr(threading, "get_native_id"):
        return
    try:
        setpriority(os.PRIO_PROCESS, threading.get_native_id(), RECORD_NICE)
    except OSError:
        pass  # not permitted (containers, policies): the recording just competes normally



# glibc's mallopt parameters (malloc.h) and the threshold pinned for a live run: frames of 1 MB and
# more (a 1280x720 RGB frame is 2.7 MB) are mapped on allocation and returned to the system on free.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
LIVE_MMAP_THRESHOLD = 1 << 20
LIVE_ARENAS = 4


def pin_frame_allocation() -> bool:
    """Keep a long live run's resident memory flat (Linux, glibc; elsewhere nothing is done).

    Why: glibc raises its mmap threshold each time a mapped block is freed (up to 32 MB), so after
    the first frames every full-size frame comes from a thread's malloc arena instead. Frames are
    allocated on one stage thread and freed on another; the arenas of about ten threads fragment
    and RSS creeps up (~1.4 MB a minute over a 30-minute soak, with the Python heap flat under
    tracemalloc). Pinning the threshold keeps every frame a mapping of its own, and fewer arenas
    leave less to fragment. Call it before the stage threads start.

    Returns:
        Whether both settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    if libc is None or not hasattr(libc, "mallopt"):
        return False  # musl and other C libraries: no such knobs
    ok = libc.mallopt(_M_MMAP_THRESHOLD, LIVE_MMAP_THRESHOLD) == 1
    return bool(libc.mallopt(_M_ARENA_MAX, LIVE_ARENAS) == 1 and ok)
