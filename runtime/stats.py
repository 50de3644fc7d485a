"""Run statistics: per-stage timing (p50/p95 ms), end-to-end latency, delivered fps and drops.

One ``PipelineStats`` per run; ``to_dict()`` is the JSON written by ``--stats-json`` in both the
offline and the live mode, and what a preview HUD reads. Every method is thread-safe: stage threads
record while another thread (the HUD, the summary) reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_WINDOW = 2048


def _percentiles_ms(samples: list[float]) -> dict[str, float]:
    """p50 and p95 of durations in seconds, as milliseconds (0.0 when there is no sample)."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0}
    p50, p95 = np.percentile(np.asarray(samples, dtype=np.float64), [50, 95]) * 1000.0
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


class StageStats:
    """Durations of one stage, in the manner of ultralytics' ``Profile``.

    Percentiles are over the last ``window`` samples so a long live session reports how it runs now;
    ``count`` is the total.

    Args:
        name: Stage name, the key in ``PipelineStats.to_dict()["stages"]``.
        window: How many recent samples the percentiles use.
    """

    def __init__(self, name: str, window: int = DEFAULT_WINDOW) -> None:
        self.name = name
        self._samples: deque[float] = deque(maxlen=window)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        """Record one duration in seconds."""
        with self._lock:
            self._samples.append(seconds)
            self._count += 1

    @contextmanager
    def time(self) -> Iterator[None]:
        """Time the ``with`` block and record it (also when the block raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(time.perf_counter() - start)

    @property
    def count(self) -> int:
        """How many durations were recorded in total."""
        return self._count

    def to_dict(self) -> dict[str, float]:
        """``{"p50": ms, "p95": ms, "count": n}``."""
        with self._lock:
            samples = list(self._samples)
            count = self._count
        return {**_percentiles_ms(samples), "count": count}


class PipelineStats:
    """Everything one run measures.

    The pipeline calls ``frame_in`` when its source yields, ``frame_out`` when the last stage has
    finished an item and ``record_drop`` when a ``drop_oldest`` edge discards one; code outside the
    pipeline (a sink on the main thread, a HUD) may time itself with ``stage(name).time()``.

    Args:
        window: Recent samples kept for percentiles and ``fps_recent``.
        clock: Time source (``time.perf_counter``; injectable for tests).
    """

    def __init__(self, window: int = DEFAULT_WINDOW, clock: Any = time.perf_counter) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: dict[str, StageStats] = {}
        self._latency: deque[float] = deque(maxlen=window)
        self._out_times: deque[float] = deque(maxlen=min(window, 120))
        self._drops: dict[str, int] = {}
        self.frames_in = 0
        self.frames_out = 0
        self.started_at: float | None = None
        self._last_out: float | None = None

    def start(self) -> None:
        """Mark the start of the run (``fps`` counts from here); idempotent."""
        with self._lock:
            if self.started_at is None:
                self.started_at = self._clock()

    def stage(self, name: str) -> StageStats:
        """The ``StageStats`` called ``name``, created on first use (insertion order is kept)."""
        with self._lock:
            if name not in self._stages:
                self._stages[name] = StageStats(name, self._window)
            return self._stages[name]

    def frame_in(self) -> None:
        """One item entered the pipeline."""
        with self._lock:
            self.frames_in += 1

    def frame_out(self, captured_at: float | None = None) -> None:
        """One item left the pipeline; ``captured_at`` (perf_counter seconds) gives its latency."""
        now = self._clock()
        with self._lock:
            self.frames_out += 1
            self._last_out = now
            self._out_times.append(now)
            if captured_at is not None:
                self._latency.append(now - captured_at)

    def record_drop(self, edge: str, n: int = 1) -> None:
        """``n`` items were discarded on ``edge`` (a queue with the ``drop_oldest`` policy)."""
        with self._lock:
            self._drops[edge] = self._drops.get(edge, 0) + n

    @property
    def dropped(self) -> int:
        """Items dropped on every edge together."""
        with self._lock:
            return sum(self._drops.values())

    @property
    def fps(self) -> float:
        """Delivered frames per second from ``start()`` to the last delivered frame."""
        with self._lock:
            if self.started_at is None or self._last_out is None or self.frames_out == 0:
                return 0.0
            elapsed = self._last_out - self.started_at
            return self.frames_out / elapsed if elapsed > 0 else 0.0

    @property
    def fps_recent(self) -> float:
        """Delivered frames per second over the last (up to) 120 frames: what a HUD shows."""
        with self._lock:
            times = list(self._out_times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def to_dict(self) -> dict[str, Any]:
        """The run's statistics as JSON-ready values (same keys offline and live).

        Returns:
            ``fps``, ``fps_recent``, ``latency_ms`` {``p50``, ``p95``} (end to end, from
            ``Frame.captured_at``), ``dropped``, ``drops`` (per edge), ``frames_in``,
            ``frames_out``, ``elapsed_s`` and ``stages`` {name: {``p50``, ``p95``, ``count``}}.
        """
        fps, fps_recent = self.fps, self.fps_recent
        with self._lock:
            latency = list(self._latency)
            drops = dict(self._drops)
            stages = list(self._stages.values())
            elapsed = 0.0 if self.started_at is None else (self._last_out or self._clock()) - self.started_at
            frames_in, frames_out = self.frames_in, self.frames_out
        return {
            "fps": round(fps, 3),
            "fps_recent": round(fps_recent, 3),
            "latency_ms": _percentiles_ms(latency),
            "dropped": sum(drops.values()),
            "drops": drops,
            "frames_in": frames_in,
            "frames_out": frames_out,
            "elapsed_s": round(max(elapsed, 0.0), 3),
            "stages": {s.name: s.to_dict() for s in stages},
        }


def write_stats_json(path: str | Path, stats: dict[str, Any]) -> None:
    """Write ``stats`` (``PipelineStats.to_dict()`` plus any extra keys) as indented JSON.

    Written to a temporary file beside ``path`` and renamed, so a reader never sees half a file.

    Raises:
        SinkError: When the file cannot be written (the message names the folder to check).
    """
    import json
    import os

    from facepaint.engine.errors import SinkError

    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        tmp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write --stats-json {path}: {exc.strerror or exc}; check the folder") from None
