"""The live screen's engine room: one ``LiveRun`` on a thread, steered by the page.

No second pipeline: the page's run is the CLI's ``open_parts`` + ``LiveRun`` with two extra sinks
after the others, a ``SwitchSinks`` (the virtual camera and the recording, each turned on and off
while running) and the preview tap. Expression edits go through the hotkeys' path
(``ExpressionStepper`` -> ``engine.set_expression`` on the render thread); motion gains and regions
through ``engine.set_motion``, also on the render thread, so each change reaches the next frame.
A new background is prepared on the caller's thread (the plate read, the portrait's matte reused)
and swapped into the engine between two frames (``engine.set_background``), so it costs no frame.
A bad input on the page raises ``FacepaintError`` from here and leaves a running pipeline running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError
from facepaint.engine.person_matte import BackgroundReplacer
from facepaint.engine.reenactment import ReenactmentEngine
from facepaint.plugins.base import Frame, Sink
from facepaint.runtime.background import open_background
from facepaint.runtime.config import AppConfig, build_app_config
from facepaint.runtime.live import LiveParts, LiveRun, open_parts
from facepaint.runtime.live_sinks import pin_frame_allocation
from facepaint.runtime.session import Tracked
from facepaint.runtime.stats import PipelineStats
from facepaint.runtime.ui import controls
from facepaint.runtime.ui.preview import PreviewTap

# Settings that reach the next frame without a restart, as the engine's ``set_motion`` names them.
_MOTION_KEYS = ("expression", "rotation", "translation", "regions")


class SwitchSinks:
    """The virtual camera and the recording, each switchable while frames flow."""

    name = "switch"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sinks: dict[str, Sink] = {}

    def put(self, key: str, sink: Sink | None) -> None:
        """Start writing to ``sink`` under ``key`` (None: stop); the one it replaces is closed."""
        with self._lock:
            old = self.sinks.pop(key, None)
            if sink is not None:
                self.sinks[key] = sink
        if old is not None:
            old.close()

    def write(self, frame: Frame) -> None:
        with self._lock:
            sinks = list(self.sinks.values())
        for sink in sinks:
            sink.write(frame)

    def close(self) -> None:
        for key in list(self.sinks):
            self.put(key, None)

    def abort(self) -> None:
        self.close()


class UiRun(LiveRun):
    """``LiveRun`` plus the page's motion changes and the driving tap, both on the render thread."""

    def __init__(self, parts: LiveParts, tap: PreviewTap, **kwargs: Any) -> None:
        super().__init__(parts, **kwargs)
        self.tap = tap
        self._motion: dict[str, Any] | None = None
        self._background: tuple[BackgroundReplacer | None] | None = None  # a pending swap (of None too)
        self.frames_rendered = 0

    def set_motion(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (``set_motion`` keywords) before the next frame renders."""
        self._motion = changes

    def set_background(self, background: BackgroundReplacer | None) -> None:
        """Put the person over the prepared ``background`` (None: none) from the next frame on."""
        self._background = (background,)

    def _infer(self, item: Tracked) -> Frame:
        motion, self._motion = self._motion, None
        background, self._background = self._background, None
        engine = self.parts.session.engine
        if motion:
            engine.set_motion(**motion)
        if background is not None and isinstance(engine, ReenactmentEngine):  # a group refuses one (_background)
            engine.set_background(background[0])
        self.tap.drive(item.frame.image)
        out = super()._infer(item)
        self.frames_rendered += 1
        return out


class LiveController:
    """Start, steer and stop the page's live run.

    Args:
        base: Config layers under the page's settings (``--config`` of ``facepaint-live ui``).
    """

    def __init__(self, base: list[dict[str, Any]] | None = None) -> None:
        self.base = base or []
        self.switch = SwitchSinks()
        self.tap = PreviewTap()
        self.run: UiRun | None = None
        self.config: AppConfig | None = None
        self.error = ""  # the last error of the running pipeline, one line
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def build(self, values: dict[str, Any]) -> AppConfig:
        """The live config of the page's settings, checked as the CLI checks them.

        Raises:
            FacepaintError: The CLI's one-line message.
        """
        if not values.get("--cam"):
            raise ConfigError("choose a camera or a video file to play as one")
        live = {k: v for k, v in values.items() if k not in ("--output", "--driving")}
        _, layer = controls.parse({**live, "--no-vcam": True})  # the page switches the virtual camera
        try:
            return build_app_config(*self.base, layer)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None

    def start(self, values: dict[str, Any]) -> None:
        """Open the parts for ``values`` and run them on a thread; a running pipeline is replaced
        only once the new one has opened (a bad portrait leaves it running).

        Raises:
            FacepaintError: What cannot be opened, in the CLI's words.
        """
        with self._lock:
            config = self.build(values)
            if self.running and self.config is not None:
                self._check_portrait(config)
            self._stop()
            pin_frame_allocation()  # a call from the page runs as long as one from --cam: the same flat memory
            parts = open_parts(config)
            parts.sinks += [self.switch, self.tap]
            self.config, self.error = config, ""
            self.run = UiRun(parts, self.tap, capacity=config.runtime.live_queue)
            self.run.controls.expression.set(config.engine.expression)
            self._thread = threading.Thread(target=self._run, args=(self.run,), name="ui-live", daemon=True)
            self._thread.start()

    def _check_portrait(self, config: AppConfig) -> None:
        """Open the new portrait's session (then close it) before stopping the running pipeline."""
        from facepaint.runtime.session import Session

        with Session(config, live=True):
            pass

    def _run(self, run: UiRun) -> None:
        try:
            run.run()
        except FacepaintError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: one line on the page, the server keeps serving
            self.error = f"unexpected {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Stop the run (the camera's close ends the capture loop; LiveRun shuts the rest down)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        run, thread = self.run, self._thread
        if run is None or thread is None:
            return
        run.parts.sinks = [s for s in run.parts.sinks if s is not self.switch and s is not self.tap]
        with contextlib.suppress(Exception):
            run.parts.camera.close()
        thread.join(10.0)
        self.run = self._thread = None

    def update(self, values: dict[str, Any]) -> bool:
        """Apply ``values`` to the running pipeline from its next frame; False when a setting
        outside the live ones changed (the page restarts the run for it).

        Raises:
            FacepaintError: A value the CLI would refuse; nothing is changed then.
        """
        config = self.build(values)
        run, old = self.run, self.config
        if run is None or old is None:
            self.config = config
            return True
        if _without_live(config) != _without_live(old):
            return False
        if config.background != old.background:  # prepared here first: a bad one changes nothing
            run.set_background(self._background(run, config.background))
        new_t, old_t = config.engine.transformer, old.engine.transformer
        motion = {k: getattr(new_t, k) for k in _MOTION_KEYS if getattr(new_t, k) != getattr(old_t, k)}
        if motion:
            run.set_motion(motion)
        if config.engine.expression != old.engine.expression:
            run.controls.expression.set(config.engine.expression)
        self.config = config
        return True

    @staticmethod
    def _background(run: UiRun, spec: str | None) -> BackgroundReplacer | None:
        """The replacer for ``spec`` over the run's portrait, reusing the running one's matte.

        Raises:
            FacepaintError: A value ``--background`` refuses (the CLI's message).
        """
        if not spec:
            return None
        session = run.parts.session
        if not isinstance(session.engine, ReenactmentEngine):
            raise ConfigError("--background keeps one person and replaces everything else; leave out --faces to use it")
        running = session.engine.background
        matte = running.matte if running is not None else None
        return open_background(spec, session.portrait.image, session.portrait.face, matte)

    def set_vcam(self, on: bool) -> str:
        """Turn the virtual camera on or off while running; returns its device.

        Raises:
            FacepaintError: No run, or no virtual camera backend (the message says how to get one).
        """
        if not on:
            self.switch.put("vcam", None)
            return ""
        run, config = self._running()
        from facepaint.plugins.sinks.vcam import VirtualCamSink

        sink = VirtualCamSink(config.virtual_camera, run.parts.camera.fps)
        self.switch.put("vcam", sink)
        return sink.device

    def set_recording(self, path: str | None, overwrite: bool = False) -> None:
        """Record what the virtual camera shows into ``path`` (None: stop and finish the file).

        Raises:
            FacepaintError: No run, or ``path`` is not a writable video file (the CLI's message).
        """
        if path is None:
            self.switch.put("record", None)
            return
        from facepaint.runtime.live import _open_recording

        run, config = self._running()
        config = dataclasses.replace(config, overwrite=overwrite)
        self.switch.put("record", _open_recording(path, config, run.parts.camera.fps, run.parts.size))

    def _running(self) -> tuple[UiRun, AppConfig]:
        run, config = self.run, self.config
        if run is None or config is None or not self.running:
            raise ConfigError("start the live run first")
        return run, config

    def action(self, name: str) -> None:
        """A preview hotkey action (``pause``, ``passthrough``, ``recalibrate``) on the running run."""
        if self.run is not None:
            self.run.controls.apply(name)

    def status(self) -> dict[str, Any]:
        """What the page shows: running, fps, latency, drops, face, pause/passthrough, sinks, error."""
        run = self.run
        out: dict[str, Any] = {"running": self.running, "error": self.error,
                               "vcam": "vcam" in self.switch.sinks, "recording": "record" in self.switch.sinks}
        if run is not None:
            c = run.controls
            # The shared figures only: LiveStats.to_dict adds the per-second series, which grows
            # with the run and is not needed twice a second.
            stats = PipelineStats.to_dict(run.stats)
            engine = run.parts.session.engine
            out.update(fps=round(run.stats.fps_recent, 1), latency_ms=round(run.stats.recent_latency_ms, 1),
                       latency_p95_ms=stats.get("latency_ms", {}).get("p95"), dropped=run.stats.dropped,
                       face=c.face, paused=c.paused, passthrough=c.passthrough,
                       expression=c.expression.describe(), frames=run.frames_rendered,
                       reference=engine.reference_state() if engine.following_neutral else "")
        return out


def _without_live(config: AppConfig) -> AppConfig:
    """``config`` with the settings that change live put back to their defaults (for comparing)."""
    from facepaint.engine.expression import ExpressionConfig
    from facepaint.engine.landmark_transformer import TransformerConfig

    default_t = TransformerConfig()
    transformer = dataclasses.replace(config.engine.transformer, **{k: getattr(default_t, k) for k in _MOTION_KEYS})
    engine = dataclasses.replace(config.engine, transformer=transformer, expression=ExpressionConfig())
    return dataclasses.replace(config, engine=engine, background=None)
