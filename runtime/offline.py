"""The offline render: ``--source portrait.jpg --driving talk.mp4 --output out.mp4``.

decode -> track (video mode) -> smooth -> render -> encode, one thread each, joined by bounded
blocking queues: every driving frame becomes exactly one output frame. ``render_file`` is the
library entry point; ``run_offline`` is the command, which adds the one-line summary on stderr (the
progress bar goes to stderr too, unless ``progress`` is off).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import ConfigError, InputError, NoFaceError
from facepaint.engine.faces import FaceGroup
from facepaint.plugins.base import FileSource, Frame, Sink, load_plugin
from facepaint.plugins.media import WRITE_IMAGES, WRITE_VIDEOS
from facepaint.plugins.sinks.file import output_kind
from facepaint.runtime.config import AppConfig
from facepaint.runtime.pipeline import BLOCK, Pipeline
from facepaint.runtime.portrait import read_portrait
from facepaint.runtime.reference import open_driving
from facepaint.runtime.session import Driver, Rendered, Session, open_tracker
from facepaint.runtime.stats import PipelineStats, write_stats_json


def check_paths(config: AppConfig) -> str:
    """Validate the output (and ``--stats-json``) paths before any heavy work.

    Returns:
        ``"video"`` or ``"image"``: what the output will hold.

    Raises:
        ConfigError: Unsupported output extension, or an output that is one of the inputs.
        InputError: A missing output or stats folder, or an existing output without ``--overwrite``.
    """
    target = Path(str(config.output)).resolve()
    for flag, path in (("--driving", config.driving), ("--source", config.source)):
        if path is not None and Path(path).resolve() == target:
            raise ConfigError(f"--output {config.output} is the same file as {flag}; the render would replace "
                              "it: choose another output name")
    kind = output_kind(str(config.output), overwrite=config.overwrite)
    if config.stats_json is not None:
        folder = Path(config.stats_json).parent
        if not folder.is_dir():
            raise InputError(f"--stats-json folder {folder} does not exist; create it first")
        if Path(config.stats_json).is_dir():
            raise InputError(f"--stats-json {config.stats_json} is a folder; give a file name such as "
                             f"{Path(config.stats_json) / 'stats.json'}")
    return kind


def frame_limit(source: FileSource, kind: str, duration: float | None) -> int | None:
    """How many frames will be rendered (None: unknown until the stream ends).

    Raises:
        ConfigError: When a still image output is asked for a driving video of several frames.
    """
    count = source.frame_count
    if duration is not None:
        cap = max(1, math.ceil(duration * source.fps - 1e-9))
        count = cap if count is None else min(count, cap)
    if kind == "image" and count != 1:
        frames = "an unknown number of" if count is None else str(count)
        raise ConfigError(f"--output is a still image ({', '.join(WRITE_IMAGES)}) but the driving "
                          f"video has {frames} frames; use {'/'.join(WRITE_VIDEOS)} or drive with an image")
    return count


class OfflineRender:
    """One offline render: decode → track → smooth → render → encode over a ``Driver``.

    Args:
        driver: The session's per-frame driver.
        sink: Where output frames go (``FileSink``).
        limit: Frames to render at most (None: all).
        progress: A tqdm-like object with ``update(n)`` (or None).
        capacity: Queue capacity between the stages.
    """

    def __init__(self, driver: Driver, sink: Sink, *, limit: int | None = None, progress: Any = None,
                 capacity: int = 4) -> None:
        self.driver, self.sink, self.limit, self.progress = driver, sink, limit, progress
        self.capacity = capacity
        self.frames_written = 0

    def frames(self, source: Iterable[Frame]) -> Iterator[Frame]:
        """The driving frames, up to ``limit``."""
        for frame in source:
            if self.limit is not None and frame.index >= self.limit:
                return
            yield frame

    def encode(self, item: Rendered) -> None:
        """Write one output frame with the driving frame's index and timing."""
        f = item.frame
        self.sink.write(Frame(image=item.output, index=f.index, pts=f.pts, captured_at=f.captured_at))
        self.frames_written += 1
        if self.progress is not None:
            self.progress.update(1)

    def run(self, source: Iterable[Frame], stats: PipelineStats) -> None:
        """Run the stages to the end of the driving stream.

        Raises:
            BaseException: The first error of any stage (or Ctrl-C), after every thread has stopped.
        """
        d, cap = self.driver, self.capacity
        with Pipeline("offline", stats=stats) as pipe:
            pipe.source("decode", self.frames(source))
            if d.parallel is not None:
                pipe.stage("track", d.parallel.push, capacity=cap, policy=BLOCK, expand=True, flush=d.parallel.flush)
            else:
                pipe.stage("track", d.track, capacity=cap, policy=BLOCK)
            if d.smoother is not None:
                pipe.stage("smooth", d.smooth, capacity=cap, policy=BLOCK, expand=True, flush=d.flush)
            pipe.stage("render", d.render, capacity=cap, policy=BLOCK)
            pipe.stage("encode", self.encode, capacity=cap, policy=BLOCK)
            pipe.start()
            pipe.join()


def render_file(config: AppConfig, *, open_session: Callable[..., Session] | None = None,
                progress: Any = None) -> dict[str, Any]:
    """Render ``config.driving`` onto ``config.source`` into ``config.output``; the library entry
    point of the offline mode (the CLI, ``eval``, ``bench`` and ``batch`` call it).

    Args:
        config: The render.
        open_session: ``(config, still=, image=, limit=) -> Session`` handing out a session that
            the caller keeps open and resets for this stream (``batch`` reuses one per portrait); None opens
            one for this file and closes it after.
        progress: Told ``update(1)`` per written frame instead of the stderr progress bar.

    Returns:
        The run's statistics (``PipelineStats`` keys plus what was written where); also written
        to ``config.stats_json`` when set.

    Raises:
        FacepaintError: Bad input, no face in the source, encoder failure; nothing is left at the
            output path.
        KeyboardInterrupt: Ctrl-C, after the threads have stopped and the partial file is gone.
    """
    kind = check_paths(config)
    image = read_portrait(config)  # cheap checks first: the tracker and engine take seconds to load
    with ExitStack() as stack:
        source = stack.enter_context(contextlib.closing(open_driving(str(config.driving))))
        limit = frame_limit(source, kind, config.duration)
        still = source.frame_count == 1
        session = _session(stack, config, open_session, still, image, limit)
        height, width = session.portrait.image.shape[:2]
        sink = load_plugin("facepaint.sinks", "file")(
            config.output, fps=source.rate, size=(width, height), encoder=config.encoder, audio=source.audio,
            overwrite=config.overwrite)
        # Registered at once so that an error or Ctrl-C from here on deletes the temporary file;
        # after sink.close() has renamed the file into place, abort() does nothing.
        stack.callback(sink.abort)
        bar = stack.enter_context(_progress_bar(config, limit)) if progress is None else None
        driver = _driver(stack, config, session, 1 if still else config.runtime.track_workers)
        job = OfflineRender(driver, sink, limit=limit, progress=progress if progress is not None else bar,
                           capacity=config.runtime.offline_queue)
        stats = PipelineStats()
        job.run(source, stats)  # joins every thread before it returns or raises
        _check_rendered(config, source, job.frames_written, driver.frames_without_face)
        if bar is not None:
            bar.close()
        sink.close()
    result = {**_result(config, job.frames_written, driver.frames_without_face, stats,
                        sink.written_size or (width, height), source.fps),
              "reference": session.reference.describe(), "models": list(session.engine.models)}
    if isinstance(session.engine, FaceGroup):
        result["faces"] = session.engine.describe()  # which faces moved, and any left as they are
    if config.stats_json is not None:
        write_stats_json(config.stats_json, result)
    return result


def _driver(stack: ExitStack, config: AppConfig, session: Session, workers: int) -> Driver:
    """The session's driver; with ``workers`` > 1, tracking over that many trackers, the extra
    ones opened here and closed with ``stack``."""
    driver = session.driver()
    if workers > 1:
        extra = [stack.enter_context(contextlib.closing(open_tracker(config.tracker, live=False)))
                 for _ in range(workers - 1)]
        stack.callback(driver.track_in_parallel(extra).close)
    return driver


def _session(stack: ExitStack, config: AppConfig, open_session: Callable[..., Session] | None, still: bool,
             image: np.ndarray, limit: int | None) -> Session:
    """The caller's session (kept open by the caller, reset for this stream), or a new one closed
    with ``stack``."""
    if open_session is not None:
        return open_session(config, still=still, image=image, limit=limit)
    return stack.enter_context(Session(config, live=False, still=still, image=image, limit=limit))


def run_offline(config: AppConfig) -> int:
    """The offline command: ``render_file`` plus its one-line summary on stderr; returns 0.

    Raises:
        FacepaintError: See ``render_file``.
    """
    print(_summary(render_file(config)), file=sys.stderr)
    return 0


def _check_rendered(config: AppConfig, source: FileSource, written: int, without_face: int) -> None:
    """Refuse a render that would write nothing, or only the portrait copied.

    Raises:
        InputError: When the driving video had no frame that could be decoded.
        NoFaceError: When the only driving frame had no face.
    """
    if written == 0:
        raise InputError(f"driving video {config.driving} has no frames that can be decoded; give a video "
                         "with at least one frame")
    if source.frame_count == 1 and written == 1 and without_face == 1:
        raise NoFaceError(f"no face found in the driving image {config.driving}; use a picture with a clearly "
                          "visible face (the output would only repeat the portrait)")


def _progress_bar(config: AppConfig, total: int | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="render", file=sys.stderr, disable=not config.progress,
                dynamic_ncols=True, leave=False)


def _result(config: AppConfig, written: int, without_face: int, stats: PipelineStats, size: tuple[int, int],
            fps: float) -> dict[str, Any]:
    """The stats JSON of an offline run: the pipeline's keys plus what was rendered where."""
    return {
        **stats.to_dict(),
        "mode": "offline",
        "output": str(config.output),
        "frames_written": written,
        "frames_without_face": without_face,
        "output_size": list(size),
        "output_fps": round(float(fps), 4),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _summary(result: dict[str, Any]) -> str:
    w, h = result["output_size"]
    n = result["frames_written"]
    if n == 1:
        return (f"facepaint-live: wrote {result['output']}: 1 frame {w}x{h}, rendered in "
                f"{result['elapsed_s']:.1f} s, {result['frames_without_face']} without a face")
    return (f"facepaint-live: wrote {result['output']}: {n} frames {w}x{h} "
            f"at {result['output_fps']:g} fps, rendered in {result['elapsed_s']:.1f} s "
            f"({result['fps']:.1f} fps), {result['frames_without_face']} without a face, "
            f"reference: {result['reference']}" + "".join(f"; {m}" for m in result.get("models", ()))
            + (f"; {result['faces']}" if "faces" in result else ""))
