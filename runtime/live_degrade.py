"""What a live run gives up when it falls behind the camera, in a stated order, said once.

Without it, a live run that is too slow for the camera loses frames wherever a drop-oldest queue
happens to be full: the viewer sees a stutter, at random. Instead ``Degrader`` watches how many of
the camera's frames were lost over short windows and, when the run keeps falling behind, takes the
next step of ``STEPS``: first the preview window shows only every ``PREVIEW_EVERY``-th frame (the
virtual camera and the recording keep every one), then the portrait is rendered at a lower internal
resolution (the output frame keeps its size: the letterbox scales the render up). Each step is
logged once (``facepaint.live``), shown on the HUD and listed in the stats JSON (``degraded``).

Load that passes (another program's burst, a backup, a browser tab) should not leave the rest of a
call at half resolution, so after ``CALM_S`` of windows that lose (almost) nothing the run tries the
step above again. A try that falls behind within ``PROBATION_S`` is undone and the next try waits
twice as long (up to ``MAX_CALM_S``): on a machine that is simply too slow the picture changes a
few times in the first minutes, then stays, since a resolution that keeps changing is worse to
watch than a steady one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2

from facepaint.engine.reenactment import ReenactmentEngine
from facepaint.runtime.config import AppConfig
from facepaint.runtime.portrait import Portrait
from facepaint.runtime.session import Session, open_engine
from facepaint.runtime.stats import PipelineStats

LOG = logging.getLogger("facepaint.live")
# The preview shows every 4th frame at the first step: a window redraw costs 2-6 ms a frame on
# two cores, the GUI thread competes with the stages, and a preview at 7 fps still shows the face.
PREVIEW_EVERY = 4
# A window of the camera's frames: long enough to average a frame's jitter, short enough to react
# within a second or two. Behind: more than LOST_LIMIT of the camera's frames lost, BEHIND_WINDOWS
# windows in a row (one busy second on a shared machine is no reason to lower the resolution).
WINDOW_S = 2.0
LOST_LIMIT = 0.05
BEHIND_WINDOWS = 2
# Back up: a window is calm when it lost at most CALM_LOST of the camera's frames; after CALM_S of
# calm windows the step above is tried again; a try that falls behind within PROBATION_S doubles
# the calm needed for the next one, up to MAX_CALM_S. Two minutes, not a few seconds: on a machine
# just too slow for the step above, a try fails a minute or so later (2026-12-06's 2-hour soak), and
# that must lengthen the wait too.
CALM_LOST = 0.01
CALM_S = 30.0
PROBATION_S = 120.0
MAX_CALM_S = 600.0
# A build takes well under a second; a shutdown never waits longer than this for one.
BUILD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Step:
    """One level of degradation.

    Attributes:
        name: What the HUD and the stats JSON call it.
        preview_every: The preview shows every n-th frame.
        scale: Internal render resolution, as a fraction of the prepared portrait's.
    """

    name: str
    preview_every: int
    scale: float


# The order, the one table of it: the preview first (nobody but the user sees it), then the
# internal resolution (everyone sees it, a little softer), never the frame rate on purpose.
STEPS = (
    Step("full", 1, 1.0),
    Step("preview every 4th frame", PREVIEW_EVERY, 1.0),
    Step("render at 75% resolution", PREVIEW_EVERY, 0.75),
    Step("render at 50% resolution", PREVIEW_EVERY, 0.5),
)


class Degrader:
    """Decides when a live run takes the next of ``STEPS``.

    Args:
        stats: The run's statistics (frames in, drops).
        preview: Whether there is a preview window (without one, its step is skipped).
        clock: Time source (injectable for tests).
    """

    def __init__(self, stats: PipelineStats, *, preview: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.stats, self.clock = stats, clock
        self.steps = STEPS if preview else tuple(s for s in STEPS if s.preview_every == 1 or s.scale < 1.0)
        self.level = 0
        self.history: list[dict[str, Any]] = []
        self._started = self._window_start = clock()
        self._seen = (stats.frames_in, stats.dropped)
        self._behind = 0
        self._calm, self._calm_needed, self._tried_at = 0.0, CALM_S, -float("inf")

    @property
    def step(self) -> Step:
        """The step in force."""
        return self.steps[self.level]

    def update(self) -> Step | None:
        """Look at the last window (called often; it acts once per ``WINDOW_S``); returns the
        new step when the run has just stepped down or back up, else None."""
        now = self.clock()
        if now - self._window_start < WINDOW_S:
            return None
        frames_in, dropped = self.stats.frames_in, self.stats.dropped
        offered = frames_in - self._seen[0] + max(0, dropped - self._seen[1])
        lost = dropped - self._seen[1]
        self._window_start, self._seen = now, (frames_in, dropped)
        behind = offered > 0 and lost > LOST_LIMIT * offered
        self._behind = self._behind + 1 if behind else 0
        self._calm = self._calm + WINDOW_S if offered > 0 and lost <= CALM_LOST * offered else 0.0
        if self._behind >= BEHIND_WINDOWS and self.level + 1 < len(self.steps):
            if now - self._tried_at <= PROBATION_S:  # the last try up did not hold
                self._calm_needed = min(2.0 * self._calm_needed, MAX_CALM_S)
            return self._take(self.level + 1, now, lost, offered)
        if self._calm >= self._calm_needed and self.level > 0:
            self._tried_at = now
            return self._take(self.level - 1, now, lost, offered)
        return None

    def _take(self, level: int, now: float, lost: int, offered: int) -> Step:
        """Move to ``level`` of ``steps``; log it once and keep it in the history."""
        up = level < self.level
        self.level, self._behind, self._calm = level, 0, 0.0
        step = self.step
        self.history.append({"step": step.name, "at_s": round(now - self._started, 1), "lost": lost,
                             "of": offered, "up": up})
        if up:
            LOG.warning("live keeps up with the camera again: back to %s (the next try up waits %.0f s of "
                        "calm if this one falls behind)", step.name, 2.0 * self._calm_needed)
        else:
            LOG.warning("live is falling behind the camera (%d of %d frames lost in %.0f s): %s", lost, offered,
                        WINDOW_S, step.name)
        return step

    def to_dict(self) -> dict[str, Any]:
        """The stats JSON's ``degraded``: the step in force, the order and when each was taken."""
        return {"step": self.step.name, "order": [s.name for s in self.steps[1:]], "steps": list(self.history)}


def scaled_portrait(portrait: Portrait, scale: float) -> Portrait:
    """``portrait`` at ``scale`` of its size, its face's landmarks scaled with it (1: itself)."""
    if scale == 1.0:
        return portrait
    h, w = portrait.image.shape[:2]
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    sx, sy = size[0] / w, size[1] / h
    image = cv2.resize(portrait.image, size, interpolation=cv2.INTER_AREA)
    lm = portrait.face.landmarks.copy()
    lm[:, 0] *= sx
    lm[:, 1] *= sy
    lm[:, 2] *= sx  # z is in the same pixel scale as x
    face = dataclasses.replace(portrait.face, landmarks=lm, frame_size=size)
    return dataclasses.replace(portrait, image=image, face=face)


class EngineBuilder:
    """Builds the session's engine at another resolution on its own thread, so the live stages
    keep running on the current one meanwhile (a build takes 50-300 ms: crop, inpaint, masks).

    Args:
        config: The run's configuration.
        session: The run's session (portrait, driving neutral).
    """

    def __init__(self, config: AppConfig, session: Session) -> None:
        self.config, self.session = config, session
        self.ready: ReenactmentEngine | None = None
        self._lock = threading.Lock()  # ready is taken by the infer thread, replaced by start()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, scale: float, expression: Any) -> None:
        """Start building the engine at ``scale`` with the edit ``expression`` (waits for a build
        still running: steps are seconds apart, a build a fraction of one); an engine built for
        the step before and not taken yet is closed."""
        self.join()
        stale = self.take_built()
        if stale is not None:
            stale.close()
        self._thread = threading.Thread(target=self._build, args=(scale, expression), name="facepaint-rescale",
                                        daemon=True)
        self._thread.start()

    def _build(self, scale: float, expression: Any) -> None:
        try:
            portrait = scaled_portrait(self.session.portrait, scale)
            engine = open_engine(self.config, portrait, reference=self.session.reference, live=True)
            engine.set_expression(expression)
            with self._lock:
                self.ready = engine
        except BaseException as exc:  # noqa: BLE001 - handed to the live run, which raises it
            self.error = exc

    def close(self) -> None:
        """Wait for a build in progress and close an engine built but never taken."""
        self.join()
        engine = self.take_built()
        if engine is not None:
            engine.close()

    def take_built(self) -> ReenactmentEngine | None:
        """``take`` without raising a failed build's error (shutdown)."""
        with self._lock:
            engine, self.ready = self.ready, None
        return engine

    def take(self) -> ReenactmentEngine | None:
        """The engine built since the last call, once (None: none yet).

        Raises:
            FacepaintError: The error the build raised.
        """
        if self.error is not None:
            raise self.error
        return self.take_built()

    def join(self) -> None:
        """Wait for a build in progress (shutdown: no thread outlives the run)."""
        if self._thread is not None:
            self._thread.join(BUILD_TIMEOUT_S)
            self._thread = None
