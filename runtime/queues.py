"""Bounded edges between pipeline stages, each with a declared policy.

``block`` loses nothing (file renders); ``drop_oldest`` keeps a live stream current by discarding the
oldest waiting frame and counting it (cameras). ``END`` marks the end of a stream.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from facepaint.engine.errors import ConfigError
from facepaint.runtime.stats import PipelineStats

BLOCK = "block"
DROP_OLDEST = "drop_oldest"
POLICIES = (BLOCK, DROP_OLDEST)

# Waits are sliced so a thread notices stop() even if a notify was missed.
_POLL_S = 0.1


class _Marker:
    """A named sentinel (readable in reprs and debuggers)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


END = _Marker("END")  # end of stream: every stage forwards it and finishes
_STOPPED = _Marker("STOPPED")  # what get() returns once the pipeline was stopped


class Edge:
    """A bounded queue between two stages with a declared overflow policy.

    Args:
        name: Edge name (``"decode->track"``), the key of its drops in the stats.
        capacity: Most items waiting (>= 1).
        policy: ``block`` (producer waits) or ``drop_oldest`` (oldest waiting item discarded).
        stop: The pipeline's stop Event; waits end when it is set.
        stats: Where drops are counted (optional).

    Raises:
        ConfigError: On an unknown policy or a capacity below 1.
    """

    def __init__(self, name: str, capacity: int, policy: str, stop: threading.Event,
                 stats: PipelineStats | None = None) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"queue policy of '{name}' must be one of {', '.join(POLICIES)}, got '{policy}'")
        if capacity < 1:
            raise ConfigError(f"queue capacity of '{name}' must be >= 1, got {capacity}")
        self.name, self.capacity, self.policy = name, capacity, policy
        self.dropped = 0
        self._stop = stop
        self._stats = stats
        self._items: deque[Any] = deque()
        self._ended = False
        self._cond = threading.Condition()

    def put(self, item: Any) -> bool:
        """Add ``item`` following the policy; ``END`` is never dropped and never waits.

        Returns:
            False when the item was not queued: the pipeline was stopped, or ``END`` was already put.
        """
        with self._cond:
            if self._ended:
                return False  # nothing follows the end of the stream
            if item is not END and self.policy == BLOCK:
                while len(self._items) >= self.capacity:
                    if self._stop.is_set():
                        return False
                    self._cond.wait(_POLL_S)
            elif item is not END:
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    self.dropped += 1
                    if self._stats is not None:
                        self._stats.record_drop(self.name)
            self._items.append(item)
            self._ended = item is END
            self._cond.notify_all()
            return True

    def get(self) -> Any:
        """The next item; ``END`` at end of stream, ``_STOPPED`` once the pipeline is stopped."""
        with self._cond:
            while not self._items or self._stop.is_set():
                if self._stop.is_set():
                    return _STOPPED  # stop() discards what is in flight
                self._cond.wait(_POLL_S)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wake(self) -> None:
        """Wake every waiting thread (after stop())."""
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
