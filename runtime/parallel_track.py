"""Offline tracking over several trackers at once, results in frame order.

The tracker (MediaPipe on the CPU, about 10 ms a frame on one core) bounds a file render near
100 fps however fast the engine is; on a machine with spare cores, ``ParallelTracking`` runs
``N`` trackers side by side. Frame ``i`` goes to tracker ``i mod N``, each tracker on its own
thread, so every tracker still sees a stream of strictly increasing timestamps (MediaPipe's video
mode needs that) with a gap of ``N`` frames between its calls, which its tracking absorbs. Results
come back in frame order, ready for the centred smoother; nothing is dropped (a file render loses
no frame).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from facepaint.engine.errors import ConfigError
from facepaint.plugins.base import Frame, StreamTimestamps, Tracker

if TYPE_CHECKING:
    from facepaint.runtime.session import Tracked

MAX_TRACKERS = 16


class ParallelTracking:
    """An ordered, lossless track stage over ``trackers``; ``push`` and ``flush`` are a pipeline's
    expanding stage and its flush.

    Args:
        trackers: Trackers in video mode, one per thread (the caller opens and closes them).
        make: ``(frame, face) -> Tracked``: the driver's record of one tracked frame.

    Raises:
        ConfigError: With no tracker or more than ``MAX_TRACKERS``.
    """

    def __init__(self, trackers: list[Tracker], make: type[Tracked]) -> None:
        if not 1 <= len(trackers) <= MAX_TRACKERS:
            raise ConfigError(f"track_workers must be in [1, {MAX_TRACKERS}], got {len(trackers)}")
        self.trackers = trackers
        self._make = make
        self._pools = [ThreadPoolExecutor(1, thread_name_prefix=f"track{k}") for k in range(len(trackers))]
        self._timestamp = StreamTimestamps()
        self._pending: deque[Future[Tracked]] = deque()
        self._missing = [0] * len(trackers)  # one counter per tracker thread: no shared write

    @property
    def frames_without_face(self) -> int:
        """Frames in which no tracker found a face so far."""
        return sum(self._missing)

    def push(self, frame: Frame) -> list[Tracked]:
        """Hand ``frame`` to its tracker; return the frames whose turn has come, in order.

        Raises:
            BaseException: The first error of a tracker, in the order of the frames.
        """
        k = frame.index % len(self.trackers)
        # Timestamps are taken here, in frame order, so each tracker's are increasing.
        stamp = self._timestamp(frame.pts)
        self._pending.append(self._pools[k].submit(self._track, k, frame, stamp))
        ready = []
        # Keep at most one frame in flight per tracker, and hand on whatever is finished in order.
        while self._pending and (len(self._pending) > len(self.trackers) or self._pending[0].done()):
            ready.append(self._pending.popleft().result())
        return ready

    def flush(self) -> list[Tracked]:
        """The frames still being tracked, in order (end of the stream)."""
        ready = [future.result() for future in self._pending]
        self._pending.clear()
        return ready

    def close(self) -> None:
        """Stop the threads (the trackers stay open: they belong to the caller)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        for pool in self._pools:
            pool.shutdown(wait=True)

    def _track(self, k: int, frame: Frame, stamp: int) -> Tracked:
        faces = self.trackers[k].track(frame.image, stamp)
        if not faces:
            self._missing[k] += 1
        return self._make(frame, faces[0] if faces else None)
