"""What a live run reports: the HUD's numbers, the latency-over-time series and the exit table.

``LiveStats`` extends the shared ``PipelineStats`` with two things a live session needs and a file
render does not: the latency of the last few frames (what the HUD shows now, not the run's median)
and a per-second series of latencies, so that ``--stats-json`` shows whether latency builds up over
a long session (the drift check of ``bench/live.py``).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

import numpy as np

from facepaint.runtime.stats import PipelineStats

# Seconds kept in the per-second series (an hour); older seconds are forgotten first. A per-minute
# summary of the whole run is kept beside it (a row a minute), so a call longer than the hour can
# still compare its first minutes with its last.
SERIES_SECONDS = 3600
RECENT_FRAMES = 30
Second = tuple[int, float, float, int]  # (second from start, p50 s, p95 s, frames)


class LiveStats(PipelineStats):
    """``PipelineStats`` plus recent latency and a per-second latency series.

    Args:
        window: Recent samples kept for the run's percentiles.
        clock: Time source (``time.perf_counter``; the frames' ``captured_at`` uses the same clock).
    """

    def __init__(self, window: int = 2048, **kwargs: Any) -> None:
        super().__init__(window, **kwargs)
        self._recent: deque[float] = deque(maxlen=RECENT_FRAMES)
        # Closed seconds as (second, p50 s, p95 s, frames), the open one as its latencies: with it,
        # at most SERIES_SECONDS seconds.
        self._seconds: deque[Second] = deque(maxlen=SERIES_SECONDS - 1)
        self._open: tuple[int, list[float]] | None = None
        self._minutes: list[dict[str, float]] = []  # closed minutes, see minutes()
        self.extra: dict[str, Any] = {}

    def frame_out(self, captured_at: float | None = None) -> None:
        """One frame delivered; its latency also goes into the recent list and the series."""
        super().frame_out(captured_at)
        if captured_at is None:
            return
        now = self._clock()
        latency = now - captured_at
        second = int(now - (self.started_at if self.started_at is not None else now))
        with self._lock:
            self._recent.append(latency)
            if self._open is None or self._open[0] != second:
                if self._open is not None:
                    self._close_second(_second(*self._open))
                self._open = (second, [])
            self._open[1].append(latency)

    @property
    def recent_latency_ms(self) -> float:
        """Median latency of the last ``RECENT_FRAMES`` delivered frames, in milliseconds."""
        with self._lock:
            recent = list(self._recent)
        return float(np.median(recent)) * 1000.0 if recent else 0.0

    def _close_second(self, closed: Second) -> None:
        """Keep a finished second, closing the minute before it when that minute is over."""
        if self._seconds and self._seconds[-1][0] // 60 != closed[0] // 60:
            self._minutes.append(_minute_row(self._minute_tail()))
        self._seconds.append(closed)

    def _minute_tail(self) -> list[Second]:
        """The closed seconds of the last minute that has any (the series holds far more than a minute)."""
        minute = self._seconds[-1][0] // 60
        return list(itertools.takewhile(lambda s: s[0] // 60 == minute, reversed(self._seconds)))

    def minutes(self) -> list[dict[str, float]]:
        """Per minute of the whole run: ``minute`` (from 0), ``n`` frames, ``p50``/``p95`` ms (the medians
        of the minute's per-second values). The second still open is left out."""
        with self._lock:
            return self._minutes + ([_minute_row(self._minute_tail())] if self._seconds else [])

    def series(self) -> list[dict[str, float]]:
        """Per second of the run: ``t`` (s from start), ``n`` frames delivered, ``p50``/``p95`` ms."""
        with self._lock:
            seconds = list(self._seconds) + ([_second(self._open[0], list(self._open[1]))] if self._open else [])
        return [{"t": t, "n": n, "p50": round(p50 * 1000.0, 3), "p95": round(p95 * 1000.0, 3)}
                for t, p50, p95, n in seconds]

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``latency_ms_by_time`` (``series()``) and whatever ``extra`` holds."""
        out = super().to_dict()
        out["latency_ms_by_time"] = self.series()
        out["latency_ms_by_minute"] = self.minutes()
        out.update(self.extra)
        return out


def _second(second: int, latencies: list[float]) -> Second:
    """A second's (second, p50 s, p95 s, frames) from its latencies."""
    p50, p95 = np.percentile(np.asarray(latencies), [50, 95])
    return second, float(p50), float(p95), len(latencies)


def _minute_row(seconds: list[Second]) -> dict[str, float]:
    """One minute's row from its closed seconds."""
    return {"minute": seconds[0][0] // 60, "n": sum(s[3] for s in seconds),
            "p50": round(float(np.median([s[1] for s in seconds])) * 1000.0, 3),
            "p95": round(float(np.median([s[2] for s in seconds])) * 1000.0, 3)}


def window_latency_ms(series: list[dict[str, float]], start: float, end: float) -> float | None:
    """Median of the per-second p50 latencies with ``start <= t < end`` (None when there is none).

    The median of seconds, not of frames, so one second of CPU contention does not move a window.
    """
    values = [r["p50"] for r in series if start <= r["t"] < end and r["n"] > 0]
    return float(np.median(values)) if values else None


def format_table(stats: dict[str, Any], target_fps: float | None = None) -> str:
    """The exit summary: one row per stage, then end-to-end latency, delivered fps and drops.

    Args:
        stats: ``LiveStats.to_dict()``.
        target_fps: The camera's rate, shown next to the delivered rate.

    Returns:
        A few lines of text, no trailing newline.
    """
    lines = [f"{'stage':<14} {'p50 ms':>8} {'p95 ms':>8} {'frames':>7}"]
    first = next(iter(stats.get("stages", {})), None)
    for name, row in stats.get("stages", {}).items():
        # The first stage's time is mostly waiting for the camera's next frame, not work.
        label = f"{name} (wait)" if name == first else name
        lines.append(f"{label:<14} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['count']:>7d}")
    lat = stats["latency_ms"]
    lines.append(f"{'end-to-end':<14} {lat['p50']:>8.1f} {lat['p95']:>8.1f} {stats['frames_out']:>7d}")
    target = f" of {target_fps:.1f}" if target_fps and math.isfinite(target_fps) else ""
    drops = ", ".join(f"{k} {v}" for k, v in stats.get("drops", {}).items() if v) or "none"
    lines.append(
        f"delivered {stats['fps']:.1f}{target} fps, {stats['frames_out']} of {stats['frames_in']} frames "
        f"in {stats['elapsed_s']:.1f} s; dropped {stats['dropped']} ({drops})"
    )
    if "reference" in stats:
        lines.append(f"reference: {stats['reference']}")
    return "\n".join(lines)
