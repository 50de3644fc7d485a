"""One batch job rendered by a warm worker: the tracker and the prepared portrait are kept across jobs.

What a worker keeps warm, measured on the 2-core CPU machine (obama.jpg, 10-frame clips): the
process with torch, OpenCV and MediaPipe imported (about 1 s), the tracker, and the tracked source
portrait (0.4 s per source). The engine itself is built again for every job: it costs 30 ms and
holds the state of one driving stream (its neutral face, the face-lost timers), which must not
leak from one job into the next.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from facepaint.engine.errors import FacepaintError
from facepaint.plugins.base import load_plugin
from facepaint.plugins.sinks.file import partial_files
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.runtime import offline
from facepaint.runtime.batch.manifest import JobResult
from facepaint.runtime.config import AppConfig
from facepaint.runtime.portrait import Portrait, load_portrait, read_portrait
from facepaint.runtime.stats import PipelineStats

PORTRAITS_KEPT = 4  # jobs come grouped by source, so a few prepared portraits cover a worker's mix


class WarmRenderer:
    """A worker's tracker and prepared portraits, opened on first use and reused by later jobs."""

    def __init__(self) -> None:
        self._trackers: dict[Any, Any] = {}
        self._portraits: dict[Any, Portrait] = {}

    def tracker(self, config: AppConfig) -> Any:
        """The tracker for ``config.tracker``, reset for a new stream."""
        if config.tracker not in self._trackers:
            self._trackers[config.tracker] = offline.open_tracker(config)
        tracker = self._trackers[config.tracker]
        tracker.reset()
        return tracker

    def portrait(self, config: AppConfig, tracker: Any) -> Portrait:
        """The source portrait, tracked once per (file version, face index, tracker settings)."""
        try:
            st = os.stat(config.source)
        except OSError:
            read_portrait(config)  # raises the single render's message for a missing file
            raise
        key = (config.source, st.st_size, st.st_mtime_ns, config.face_index, config.tracker)
        if key not in self._portraits:
            if len(self._portraits) >= PORTRAITS_KEPT:
                self._portraits.pop(next(iter(self._portraits)))
            self._portraits[key] = load_portrait(config, tracker, read_portrait(config))
            tracker.reset()
        return self._portraits[key]

    def close(self) -> None:
        """Close every tracker (once)."""
        while self._trackers:
            self._trackers.popitem()[1].close()


def render_file(warm: WarmRenderer, config: AppConfig, on_frame: Callable[[int], None] | None) -> tuple[int, int]:
    """Render one file with the worker's warm parts: the batch's only adapter to the offline render.

    Returns:
        Frames written, and how many of them had no face in the driving frame.

    Raises:
        FacepaintError: As the single-file render; nothing is left at the output path.
        KeyboardInterrupt: Stopped; nothing is left at the output path.
    """
    kind = offline.check_paths(config)
    with ExitStack() as stack:
        tracker = warm.tracker(config)
        portrait = warm.portrait(config, tracker)
        source = offline.open_driving(str(config.driving))
        stack.callback(source.close)
        limit = offline.frame_limit(source, kind, config.duration)
        engine = offline.open_engine(config, portrait, still=source.frame_count == 1)
        height, width = portrait.image.shape[:2]
        sink = load_plugin("facepaint.sinks", "file")(
            config.output, fps=getattr(source, "rate", source.fps), size=(width, height),
            encoder=config.encoder, audio=getattr(source, "audio", None))
        stack.callback(sink.abort)  # after close() has renamed the file into place it does nothing
        progress = _Progress(on_frame) if on_frame is not None else None
        smoother = CenteredSmoother() if config.tracker.smoothing else None
        job = offline.OfflineRender(tracker, engine, sink, limit=limit, progress=progress, smoother=smoother)
        job.run(source, PipelineStats())
        sink.close()
    return job.frames_written, job.frames_without_face


def run_job(warm: WarmRenderer, job_id: str, config: AppConfig, attempt: int = 1,
            on_frame: Callable[[int], None] | None = None) -> JobResult:
    """Render one job and say how it went; a failure is a result, not an exception.

    Any exception of the render is the job's failure (one line in the manifest): a batch must go on
    past a corrupt file or a bug hit by one odd input. Ctrl-C is not a failure and propagates.
    """
    start = time.perf_counter()
    for tmp in partial_files(str(config.output)):
        tmp.unlink(missing_ok=True)  # left by a worker killed on this job: its output is this job's alone
    try:
        frames, faceless = render_file(warm, config, on_frame)
    except FacepaintError as exc:
        return _failed(job_id, config, str(exc), start, attempt)
    except Exception as exc:  # noqa: BLE001 - isolate the job; the message says what it was
        return _failed(job_id, config, f"{type(exc).__name__}: {exc}", start, attempt)
    wall = time.perf_counter() - start
    return JobResult(id=job_id, status="done", output=str(config.output), frames=frames,
                     fps=frames / wall if wall > 0 else 0.0, wall_s=wall, attempts=attempt,
                     frames_without_face=faceless)


def _failed(job_id: str, config: AppConfig, message: str, start: float, attempt: int) -> JobResult:
    lines = message.strip().splitlines() or ["(no message)"]
    return JobResult(id=job_id, status="failed", output=str(config.output), wall_s=time.perf_counter() - start,
                     error=lines[0], attempts=attempt)


class _Progress:
    """The ``update(n)`` that ``OfflineRender`` calls per frame, forwarded to a callback."""

    def __init__(self, callback: Callable[[int], None]) -> None:
        self._callback = callback

    def update(self, n: int = 1) -> None:
        self._callback(n)
