"""Live mode (``--cam``): camera → track → infer → composite → output, never building up latency.

One named thread per stage, joined by queues of capacity 1 that drop the *oldest* frame: when a stage
is slower than the camera, the frames it cannot take are discarded (and counted), so the output
always shows the newest frame the slowest stage could handle instead of an ever-growing backlog.
Latency is measured from ``Frame.captured_at``. The main thread only supervises: it runs the preview
window (GUI calls must stay on the thread that made the window), the ``--duration`` clock and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facepaint.engine.errors import ConfigError
from facepaint.plugins.base import Frame, LiveSource, Sink, load_plugin
from facepaint.plugins.media import WRITE_VIDEOS
from facepaint.plugins.sinks.preview import HudInfo, PreviewSink
from facepaint.plugins.sinks.vcam import letterbox
from facepaint.runtime.config import AppConfig
from facepaint.runtime.expression import ExpressionStepper
from facepaint.runtime.hud import LiveStats, format_table
from facepaint.runtime.live_degrade import Degrader, EngineBuilder
from facepaint.runtime.live_sinks import BackgroundSink, ClockedSink, pin_frame_allocation, record_backlog
from facepaint.runtime.pipeline import DROP_OLDEST, Pipeline
from facepaint.runtime.session import Session, Tracked
from facepaint.runtime.source_live import SourceClip, open_clip_session
from facepaint.runtime.source_track import is_video_source
from facepaint.runtime.stats import write_stats_json

# How often the supervising thread wakes up when there is no preview window to pump.
_TICK_S = 0.05
_JOIN_TIMEOUT_S = 5.0


class Controls:
    """What the hotkeys change, shared between the main thread and the stage threads."""

    def __init__(self) -> None:
        self.passthrough = False
        self.paused = False
        self.face = False
        self.recalibrate = threading.Event()
        self.expression = ExpressionStepper()

    def apply(self, action: str | None) -> bool:
        """Apply a preview hotkey action; returns False for ``quit``."""
        if action == "quit":
            return False
        if self.expression.apply(action):
            return True
        if action == "recalibrate":
            self.recalibrate.set()
        elif action == "passthrough":
            self.passthrough = not self.passthrough
        elif action == "pause":
            self.paused = not self.paused
        return True


@dataclass
class LiveParts:
    """The opened resources of one live run; ``close()`` releases them all, each once.

    Attributes:
        camera: The live source (webcam or paced file).
        session: Tracker (causal smoothing on) and engine for the portrait; closed with the rest.
        sinks: Output sinks, written from the output thread (virtual camera, recording).
        preview: The preview window, pumped from the main thread (None: no window).
        size: (width, height) every output frame is letterboxed to.
        clip: A video source's clip, played under the camera (None: a still source).
    """

    camera: LiveSource
    session: Session
    sinks: list[Sink] = field(default_factory=list)
    preview: PreviewSink | None = None
    size: tuple[int, int] = (1280, 720)
    clip: SourceClip | None = None
    _closed: bool = field(default=False, init=False, repr=False)

    def close(self) -> None:
        """Release everything once: camera, sinks, preview, session; one failure skips none.

        Raises:
            Exception: The first error a part raised while closing (after closing the others).
        """
        if self._closed:
            return
        self._closed = True
        closers: list[Callable[[], Any]] = [self.camera.close]
        closers += [sink.close for sink in self.sinks]
        if self.preview is not None:
            closers.append(self.preview.close)
        if self.clip is not None:
            closers.append(self.clip.close)
        closers.append(self.session.close)
        errors = []
        for close in closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - report the first after releasing the rest
                errors.append(exc)
        if errors:
            raise errors[0]


class LiveRun:
    """One live session over opened ``LiveParts``.

    Args:
        parts: What to run (``open_parts`` builds them from a config).
        duration: Stop after this many seconds (None: until the stream ends, ``q`` or Ctrl-C).
        stats: Where measurements go (a new ``LiveStats`` by default).
        capacity: Queue capacity between the stages (the oldest frame is dropped beyond it).
        rescale: Builds the engine at another resolution when the run falls behind or keeps up again (None: the
            preview step is the only one; ``live_degrade``).
    """

    def __init__(self, parts: LiveParts, *, duration: float | None = None, stats: LiveStats | None = None,
                 capacity: int = 1, rescale: EngineBuilder | None = None) -> None:
        self.parts = parts
        self.duration = duration
        self.stats = stats if stats is not None else LiveStats()
        self.capacity = capacity
        self.controls = Controls()
        self.engine = parts.session.engine
        self.driver = parts.session.driver()
        self._last_out: np.ndarray | None = None
        self.rescale = rescale
        self.degrader = Degrader(self.stats, preview=parts.preview is not None)
        self._outputs = 0

    def run(self) -> dict[str, Any]:
        """Run until the stream ends, the duration passes, ``q``/window close, or an error.

        Returns:
            The run's statistics (``LiveStats.to_dict()``).

        Raises:
            FacepaintError: A stage's error (camera lost, virtual camera gone), after shutting down.
            KeyboardInterrupt: Ctrl-C, after shutting down.
        """
        pipe = Pipeline("live", stats=self.stats)
        pipe.source("capture", self._capture)
        for name, stage in (("track", self._track), ("infer", self._infer), ("composite", self._composite),
                            ("output", self._output)):
            pipe.stage(name, stage, capacity=self.capacity, policy=DROP_OLDEST)
        failed = True
        try:
            pipe.start()
            self._supervise(pipe)
            failed = False
        finally:
            close_error = self._shutdown(pipe)
        # The first error wins: a recording that cannot be finished matters less than its cause.
        if pipe.error is not None:
            raise pipe.error
        if close_error is not None and not failed:
            raise close_error
        return self.stats.to_dict()

    def _supervise(self, pipe: Pipeline) -> None:
        """Wait on the main thread: pump the preview, watch the clock, notice the end or an error."""
        deadline = None if self.duration is None else time.monotonic() + self.duration
        preview = self.parts.preview
        while pipe.running and pipe.error is None:
            if deadline is not None and time.monotonic() >= deadline:
                return
            self._degrade()
            if preview is None:
                time.sleep(_TICK_S)
            elif not self.controls.apply(preview.pump(self._hud(), wait_ms=10)):
                return

    def _degrade(self) -> None:
        """Take the next step of ``live_degrade.STEPS`` when the run keeps falling behind, or the
        one above when it has kept up for a while; a new scale is built beside the running engine."""
        scale = self.degrader.step.scale
        step = self.degrader.update()
        if step is not None and step.scale != scale and self.rescale is not None:
            self.rescale.start(step.scale, self.engine.expression)

    def _shutdown(self, pipe: Pipeline) -> Exception | None:
        """Stop the stages and release every part; returns the first error from closing, if any."""
        # Stop first so in-flight frames are dropped, then release the camera (which ends a blocking
        # read in the capture thread), then join; sinks close last, after their writer has exited.
        pipe.stop()
        with contextlib.suppress(Exception):
            self.parts.camera.close()
        pipe.close(_JOIN_TIMEOUT_S)
        error = None
        try:
            if self.rescale is not None:
                self.rescale.close()
            self.parts.close()
        except Exception as exc:  # noqa: BLE001 - handed back so run() can rank it after the cause
            error = exc
        for sink in self.parts.sinks:
            if isinstance(sink, BackgroundSink) and sink.dropped:
                self.stats.record_drop(f"output->{sink.name}", sink.dropped)
        self.stats.extra.update(self._extra())
        self.stats.extra["degraded"] = self.degrader.to_dict()
        return error

    def _extra(self) -> dict[str, Any]:
        from facepaint.plugins.sinks.vcam import VirtualCamSink

        camera, extra = self.parts.camera, dict[str, Any]()
        extra["camera"] = {"fps": round(float(camera.fps), 3), "size": list(camera.size), "dropped": camera.dropped}
        if self.engine.following_neutral:
            extra["reference"] = self.engine.reference_state()
        for sink in self.parts.sinks:
            if isinstance(sink, VirtualCamSink):
                extra["vcam"] = {"device": sink.device, "fps": sink.fps, "sent": sink.sent, "skipped": sink.skipped}
        return extra

    def _hud(self) -> HudInfo:
        engine = self.engine
        return HudInfo(fps=self.stats.fps_recent, latency_ms=self.stats.recent_latency_ms,
                       dropped=self.stats.dropped, face=self.controls.face,
                       passthrough=self.controls.passthrough, paused=self.controls.paused,
                       expression=self.controls.expression.describe(),
                       reference=engine.reference_state() if engine.following_neutral else "",
                       degraded=self.degrader.step.name if self.degrader.level else "")

    # ---- stage functions (each runs on its own thread) ----

    def _capture(self) -> Iterator[Frame]:
        """The camera's frames; frames the camera itself overwrote are counted as drops."""
        camera = self.parts.camera
        seen = 0
        for frame in camera:
            dropped = camera.dropped
            if dropped > seen:
                self.stats.record_drop("camera", dropped - seen)
                seen = dropped
            yield frame

    def _track(self, frame: Frame) -> Tracked:
        item = self.driver.track(frame)
        self.controls.face = item.face is not None
        return item

    def _infer(self, item: Tracked) -> Frame:
        frame = item.frame
        built = self.rescale.take() if self.rescale is not None else None
        if built is not None:  # the lower resolution the degrader asked for, from this frame on
            # The session takes it and closes the one it replaces: a run that stepped down holds one
            # engine, not one per step (each is tens of MB at a large portrait: the 2-hour soak's RSS).
            self.parts.session.replace_engine(built)
            self.engine = self.driver.engine = built
        if self.controls.recalibrate.is_set():
            self.controls.recalibrate.clear()
            self.engine.recalibrate()
        expression = self.controls.expression.take()
        if expression is not None:
            self.engine.set_expression(expression)
        if self.controls.passthrough:
            image = frame.image
        elif self.controls.paused and self._last_out is not None:
            image = self._last_out
        else:
            clip = self.parts.clip
            image = clip.render(item) if clip is not None else self.driver.render(item).output
            self._last_out = image
        return dataclasses.replace(frame, image=image)

    def _composite(self, frame: Frame) -> Frame:
        return dataclasses.replace(frame, image=letterbox(frame.image, self.parts.size))

    def _output(self, frame: Frame) -> Frame:
        for sink in self.parts.sinks:
            sink.write(frame)
        self._outputs += 1
        if self.parts.preview is not None and self._outputs % self.degrader.step.preview_every == 0:
            self.parts.preview.write(frame)
        return frame


def open_camera(config: AppConfig) -> LiveSource:
    """The live source for ``--cam`` from the plugin registry: ``webcam`` (an index or a /dev path)
    or ``paced`` (a video file played on its own clock, like a camera).

    Raises:
        SourceError: When ``--cam`` names nothing usable or the camera cannot be opened.
    """
    from facepaint.plugins.sources.webcam import is_video_file, parse_cam

    cam = parse_cam(str(config.cam))
    if is_video_file(cam):
        return load_plugin("facepaint.sources", "paced")(str(cam), loop=config.loop)
    return load_plugin("facepaint.sources", "webcam")(cam)


def open_parts(config: AppConfig) -> LiveParts:
    """Open camera, session (tracker, portrait, engine) and sinks for ``config``.

    Everything opened so far is released when a later part fails to open.

    Raises:
        FacepaintError: A part that cannot be opened (its message says how to fix it).
    """
    with contextlib.ExitStack() as stack:
        # Cheap checks that users most often fail (no display, no camera, no loopback device) come
        # before the tracker and engine, which take seconds to load.
        preview = stack.enter_context(PreviewSink()) if config.preview else None
        camera = open_camera(config)
        stack.callback(camera.close)
        width, height = config.virtual_camera.size
        size = (width, height)
        sinks: list[Sink] = []
        if config.vcam:
            from facepaint.plugins.sinks.vcam import VirtualCamSink

            sinks.append(stack.enter_context(VirtualCamSink(config.virtual_camera, camera.fps)))
        if config.output:
            sinks.append(stack.enter_context(_open_recording(config.output, config, camera.fps, size)))
        clip = None
        if is_video_source(config.source):
            session, clip = open_clip_session(config)
            stack.callback(clip.close)
            stack.enter_context(session)
        else:
            session = stack.enter_context(Session(config, live=True))
        parts = LiveParts(camera, session, sinks, preview, size, clip)
        stack.pop_all()
    return parts


def _open_recording(output: str, config: AppConfig, fps: float, size: tuple[int, int]) -> BackgroundSink:
    """The ``--output`` recording of what the virtual camera shows, on the camera's clock.

    Raises:
        ConfigError: When ``--output`` is not a video file.
    """
    from facepaint.plugins.sinks.file import FileSink

    encoder = dataclasses.replace(config.encoder, preset=config.encoder.live_preset)
    sink = FileSink(output, fps=fps, size=size, encoder=encoder, overwrite=config.overwrite)
    if sink.kind != "video":
        sink.abort()
        raise ConfigError(f"--output {output}: with --cam the recording is a video; use "
                          f"{', '.join(WRITE_VIDEOS[:-1])} or {WRITE_VIDEOS[-1]}")
    return BackgroundSink(ClockedSink(sink, fps), "record", record_backlog(size))


def run_live(config: AppConfig, parts: LiveParts | None = None) -> int:
    """The ``--cam`` command: run live, print the stats table on stderr, write ``--stats-json``.

    Args:
        config: The run's configuration (``config.cam`` set).
        parts: Already opened parts (tests); by default opened from ``config``.

    Returns:
        The exit code: 0.

    Raises:
        FacepaintError: When a part cannot be opened or fails while running.
        KeyboardInterrupt: Ctrl-C, after a clean shutdown and the stats.
    """
    pin_frame_allocation()  # before any stage thread allocates its first frame
    parts = parts if parts is not None else open_parts(config)
    live = LiveRun(parts, duration=config.duration, capacity=config.runtime.live_queue,
                   rescale=EngineBuilder(config, parts.session))
    live.controls.expression = ExpressionStepper(parts.session.engine.expression)  # the edit it was built with
    try:
        live.run()
    finally:
        stats = live.stats.to_dict()
        print(format_table(stats, target_fps=float(parts.camera.fps)), file=sys.stderr)
        if config.stats_json:
            write_stats_json(config.stats_json, stats)
    return 0
