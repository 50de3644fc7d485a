"""One batch job rendered by a warm worker: ``offline.render_file`` with sessions kept across jobs.

A worker keeps the process with torch, OpenCV and MediaPipe imported (about 1 s on the 2-core
machine), and a ``Session`` per portrait: its tracker, the tracked portrait (0.4 s) and the engine
(its prepared source, and the weights of any neural stage). A session handed to the next job of
the same portrait is reset first, so that job renders exactly what a single command would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from facepaint.engine.errors import FacepaintError
from facepaint.plugins.sinks.file import partial_files
from facepaint.runtime.batch.manifest import JobResult
from facepaint.runtime.config import AppConfig
from facepaint.runtime.offline import render_file
from facepaint.runtime.session import Session
from facepaint.runtime.source_track import is_video_source
from facepaint.runtime.source_video import render_source_video

SESSIONS_KEPT = 2  # jobs come grouped by portrait: one session in use, one spare for an interleaved job


class WarmSessions:
    """A worker's open sessions, keyed by what they were built from; the oldest is closed first."""

    def __init__(self) -> None:
        self._open: dict[Any, Session] = {}

    def __call__(self, config: AppConfig, *, still: bool, image: np.ndarray, limit: int | None) -> Session:
        """The session for ``config``'s portrait (``render_file``'s ``open_session``), ready for its stream."""
        st = os.stat(config.source)  # render_file has just read the file
        key = (config.source, st.st_size, st.st_mtime_ns, config.face_index, config.faces, config.tracker,
               config.engine, still)
        session = self._open.pop(key, None)
        if session is None:
            while len(self._open) >= SESSIONS_KEPT:
                self._open.pop(next(iter(self._open))).close()
            session = Session(config, live=False, still=still, image=image, limit=limit)
        else:
            session.reset(str(config.driving), limit)
        self._open[key] = session  # most recently used last
        return session

    def close(self) -> None:
        """Close every session (once)."""
        while self._open:
            self._open.popitem()[1].close()


def run_job(warm: WarmSessions, job_id: str, config: AppConfig, attempt: int = 1,
            on_frame: Callable[[int], None] | None = None) -> JobResult:
    """Render one job and say how it went; a failure is a result, not an exception.

    Any exception of the render is the job's failure (one line in the manifest): a batch must go on
    past a corrupt file or a bug hit by one odd input. Ctrl-C is not a failure and propagates.
    """
    start = time.perf_counter()
    for tmp in partial_files(str(config.output)):
        tmp.unlink(missing_ok=True)  # left by a worker killed on this job: its output is this job's alone
    try:
        if is_video_source(config.source):  # a video source prepares per clip: no session to keep
            stats = render_source_video(config, progress=_Progress(on_frame))
        else:
            stats = render_file(config, open_session=warm, progress=_Progress(on_frame))
    except FacepaintError as exc:
        return _failed(job_id, config, str(exc), start, attempt)
    except Exception as exc:  # noqa: BLE001 - isolate the job; the message says what it was
        return _failed(job_id, config, f"{type(exc).__name__}: {exc}", start, attempt)
    wall = time.perf_counter() - start
    frames = int(stats["frames_written"])
    return JobResult(id=job_id, status="done", output=str(config.output), frames=frames,
                     fps=frames / wall if wall > 0 else 0.0, wall_s=wall, attempts=attempt,
                     frames_without_face=int(stats["frames_without_face"]))


def _failed(job_id: str, config: AppConfig, message: str, start: float, attempt: int) -> JobResult:
    lines = message.strip().splitlines() or ["(no message)"]
    return JobResult(id=job_id, status="failed", output=str(config.output), wall_s=time.perf_counter() - start,
                     error=lines[0], attempts=attempt)


class _Progress:
    """The ``update(n)`` that the render calls per written frame, forwarded to a callback (or dropped)."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback

    def update(self, n: int = 1) -> None:
        if self._callback is not None:
            self._callback(n)
