"""The offline render: ``--source portrait.jpg --driving talk.mp4 --output out.mp4``.

decode -> track (video mode) -> render -> encode, one thread each, joined by bounded blocking
queues: every driving frame becomes exactly one output frame. This module is the CLI layer of the
offline mode, so the progress bar and the one-line summary go to stderr from here.
"""

from __future__ import annotations

import dataclasses

import math
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Frame, StreamTimestamps, load_plugin
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.plugins.sinks.file import IMAGE_SUFFIXES as OUTPUT_IMAGE_SUFFIXES
from facepaint.plugins.sinks.file import output_kind
from facepaint.plugins.sources.image import IMAGE_SUFFIXES as DRIVING_IMAGE_SUFFIXES
from facepaint.runtime.config import AppConfig
from facepaint.runtime.pipeline import BLOCK, Pipeline
from facepaint.runtime.portrait import Portrait, load_portrait, read_portrait
from facepaint.runtime.reference import Reference, find_reference
from facepaint.runtime.stats import PipelineStats, write_stats_json

QUEUE_CAPACITY = 4  # enough to overlap the stages; more only holds more frames in memory


@dataclass(frozen=True, eq=False)
class _Work:
    """A driving frame on its way through the pipeline."""

    frame: Frame
    face: FaceTrack | None = None
    output: np.ndarray | None = None

    @property
    def captured_at(self) -> float:
        """When the driving frame was decoded: end-to-end latency is measured from it."""
        return self.frame.captured_at


def open_tracker(config: AppConfig) -> Any:
    """The tracker plugin named by ``config.tracker`` (tests replace this function).

    Its own causal smoothing is turned off: a file render smooths with ``CenteredSmoother``
    instead, which looks ahead and so does not make the output trail the driving face.
    """
    tracker_config = dataclasses.replace(config.tracker, smoothing=False)
    return load_plugin("facepaint.trackers", config.tracker.name)(tracker_config)


def open_engine(config: AppConfig, portrait: Portrait, still: bool = False) -> Any:
    """The reenactment engine prepared for ``portrait`` (tests replace this function).

    A still driving image has no neutral frame to measure motion from, so it is always read
    against the source's own face (``reference="source"``); videos use the configured reference.
    """
    from facepaint.engine.reenactment import ReenactmentEngine

    engine_config = config.engine
    if still:
        transformer = dataclasses.replace(engine_config.transformer, reference="source")
        engine_config = dataclasses.replace(engine_config, transformer=transformer)
    return ReenactmentEngine(engine_config, portrait.image, portrait.face)


def open_driving(path: str) -> Any:
    """The driving source: ``ImageSource`` for still images (by extension), else ``VideoSource``.

    Raises:
        InputError: When the file is missing, unreadable, corrupt or has no video stream.
    """
    name = "image" if Path(path).suffix.lower() in DRIVING_IMAGE_SUFFIXES else "video"
    return load_plugin("facepaint.sources", name)(path)


def check_paths(config: AppConfig) -> str:
    """Validate the output (and ``--stats-json``) paths before any heavy work.

    Returns:
        ``"video"`` or ``"image"``: what the output will hold.

    Raises:
        ConfigError: Unsupported output extension, or an output that is one of the inputs.
        InputError: A missing output or stats folder.
    """
    kind = output_kind(str(config.output))
    target = Path(str(config.output)).resolve()
    for flag, path in (("--driving", config.driving), ("--source", config.source)):
        if path is not None and Path(path).resolve() == target:
            raise ConfigError(f"--output {config.output} is the same file as {flag}; the render would replace "
                              "it: choose another output name")
    if config.stats_json is not None:
        folder = Path(config.stats_json).parent
        if not folder.is_dir():
            raise InputError(f"--stats-json folder {folder} does not exist; create it first")
    return kind


def frame_limit(source: Any, kind: str, duration: float | None) -> int | None:
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
        raise ConfigError(f"--output is a still image ({', '.join(OUTPUT_IMAGE_SUFFIXES)}) but the driving "
                          f"video has {frames} frames; use .mp4/.mkv/.mov or drive with an image")
    return count


class OfflineRender:
    """One offline render: the stage functions and their counters.

    Args:
        tracker: Tracker used in video mode on the driving frames.
        engine: ``ReenactmentEngine`` (``render(frame_rgb, face, t_seconds)``).
        sink: Where output frames go (``FileSink``).
        limit: Frames to render at most (None: all).
        progress: A tqdm-like object with ``update(n)`` (or None).
    """

    def __init__(self, tracker: Any, engine: Any, sink: Any, *, limit: int | None = None,
                 progress: Any = None, smoother: CenteredSmoother | None = None) -> None:
        self.tracker, self.engine, self.sink = tracker, engine, sink
        self.limit, self.progress, self.smoother = limit, progress, smoother
        self.frames_without_face = 0
        self.frames_written = 0
        self._timestamp = StreamTimestamps()

    def frames(self, source: Any) -> Any:
        """The driving frames, up to ``limit``."""
        for frame in source:
            if self.limit is not None and frame.index >= self.limit:
                return
            yield frame

    def track(self, frame: Frame) -> _Work:
        """Track the largest face; the timestamp comes from pts and is kept strictly increasing
        (MediaPipe's video mode refuses a timestamp that does not grow)."""
        faces = self.tracker.track(frame.image, self._timestamp(frame.pts))
        if not faces:
            self.frames_without_face += 1
        return _Work(frame, faces[0] if faces else None)

    def smooth(self, work: _Work) -> list[_Work]:
        """Hold frames back until the centred smoothing window around them is complete."""
        return [_Work(w.frame, face) for w, face in self.smoother.push(work, work.face)]

    def flush(self) -> list[_Work]:
        """The frames still held by the smoothing window at the end of the stream."""
        return [_Work(w.frame, face) for w, face in self.smoother.flush()]

    def render(self, work: _Work) -> _Work:
        """Reenact the portrait with the tracked face (None: the engine holds its last pose)."""
        out = self.engine.render(work.frame.image, work.face, work.frame.pts)
        return _Work(work.frame, work.face, out)

    def encode(self, work: _Work) -> None:
        """Write one output frame with the driving frame's index and timing."""
        f = work.frame
        self.sink.write(Frame(image=work.output, index=f.index, pts=f.pts, captured_at=f.captured_at))
        self.frames_written += 1
        if self.progress is not None:
            self.progress.update(1)

    def run(self, source: Any, stats: PipelineStats) -> None:
        """Run the four stages to the end of the driving stream.

        Raises:
            BaseException: The first error of any stage (or Ctrl-C), after every thread has stopped.
        """
        with Pipeline("offline", stats=stats) as pipe:
            pipe.source("decode", self.frames(source))
            pipe.stage("track", self.track, capacity=QUEUE_CAPACITY, policy=BLOCK)
            if self.smoother is not None:
                pipe.stage("smooth", self.smooth, capacity=QUEUE_CAPACITY, policy=BLOCK, expand=True,
                           flush=self.flush)
            pipe.stage("render", self.render, capacity=QUEUE_CAPACITY, policy=BLOCK)
            pipe.stage("encode", self.encode, capacity=QUEUE_CAPACITY, policy=BLOCK)
            pipe.start()
            pipe.join()


def run_offline(config: AppConfig) -> int:
    """Render ``config.driving`` onto ``config.source`` into ``config.output``.

    Returns:
        0 on success.

    Raises:
        FacepaintError: Bad input, no face in the source, encoder failure; nothing is left at the
            output path.
        KeyboardInterrupt: Ctrl-C, after the threads have stopped and the partial file is gone.
    """
    kind = check_paths(config)
    image = read_portrait(config)  # cheap checks first: the tracker and engine take seconds to load
    with ExitStack() as stack:
        source = open_driving(str(config.driving))
        stack.callback(source.close)
        limit = frame_limit(source, kind, config.duration)
        tracker = open_tracker(config)
        stack.callback(tracker.close)
        portrait = load_portrait(config, tracker, image)
        tracker.reset()
        still = source.frame_count == 1
        engine = open_engine(config, portrait, still=still)
        _close_later(stack, engine)
        reference = _reference(config, tracker, limit, still)
        if reference.face is not None:
            engine.calibrate(reference.face)
        height, width = portrait.image.shape[:2]
        sink = load_plugin("facepaint.sinks", "file")(
            config.output, fps=getattr(source, "rate", source.fps), size=(width, height),
            encoder=config.encoder, audio=getattr(source, "audio", None))
        # Registered at once so that an error or Ctrl-C from here on deletes the temporary file;
        # after sink.close() has renamed the file into place, abort() does nothing.
        stack.callback(sink.abort)
        progress = _progress_bar(config, limit)
        stack.callback(progress.close)
        smoother = CenteredSmoother() if config.tracker.smoothing else None
        job = OfflineRender(tracker, engine, sink, limit=limit, progress=progress, smoother=smoother)
        stats = PipelineStats()
        job.run(source, stats)  # joins every thread before it returns or raises
        progress.close()
        sink.close()
    result = _result(config, job, stats, sink.written_size or (width, height), source.fps)
    result["reference"] = reference.describe()
    if config.stats_json is not None:
        write_stats_json(config.stats_json, result)
    print(_summary(result), file=sys.stderr)
    return 0


def _reference(config: AppConfig, tracker: Any, limit: int | None, still: bool) -> Reference:
    """The driving face motion is measured from; ``auto`` looks over the clip first."""
    if still:
        return Reference("source")
    with open_driving(str(config.driving)) as video:
        return find_reference(config.engine.transformer.reference, video, tracker, limit)


def _close_later(stack: ExitStack, obj: Any) -> None:
    """Close ``obj`` with the stack when it has a ``close()`` (the engine contract does not require one)."""
    close = getattr(obj, "close", None)
    if callable(close):
        stack.callback(close)


def _progress_bar(config: AppConfig, total: int | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="render", file=sys.stderr, disable=not config.progress,
                dynamic_ncols=True, leave=False)


def _result(config: AppConfig, job: OfflineRender, stats: PipelineStats, size: tuple[int, int],
            fps: float) -> dict[str, Any]:
    """The stats JSON of an offline run: the pipeline's keys plus what was rendered where."""
    return {
        **stats.to_dict(),
        "mode": "offline",
        "output": str(config.output),
        "frames_written": job.frames_written,
        "frames_without_face": job.frames_without_face,
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
            f"reference: {result['reference']}")
