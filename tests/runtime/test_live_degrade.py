"""Live degradation order and the portrait fitted to the output frame."""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.runtime.config import build_app_config
from facepaint.runtime.live_degrade import (
    BEHIND_WINDOWS,
    CALM_S,
    MAX_CALM_S,
    STEPS,
    WINDOW_S,
    Degrader,
    EngineBuilder,
)
from facepaint.runtime.portrait import fit_to_frame
from facepaint.runtime.session import Session
from facepaint.runtime.stats import PipelineStats


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _window(degrader: Degrader, clock: _Clock, frames: int, lost: int) -> object:
    """One window of ``frames`` captured frames of which ``lost`` were dropped; the degrader's answer."""
    stats = degrader.stats
    for _ in range(frames):
        stats.frame_in()
    if lost:
        stats.record_drop("track->infer", lost)
    clock.t += WINDOW_S
    return degrader.update()


def test_steps_down_in_order_only_when_behind_for_several_windows() -> None:
    stats, clock = PipelineStats(), _Clock()
    degrader = Degrader(stats, preview=True, clock=clock)
    for _ in range(5):  # keeping up: nothing given up
        assert _window(degrader, clock, 60, 0) is None
    assert _window(degrader, clock, 60, 20) is None  # one bad window is not enough
    assert _window(degrader, clock, 60, 0) is None
    taken = []
    for _ in range(BEHIND_WINDOWS * (len(STEPS) + 1)):
        step = _window(degrader, clock, 40, 20)
        if step is not None:
            taken.append(step)
    assert [s.name for s in taken] == [s.name for s in STEPS[1:]]  # preview, then resolution, never back
    assert taken[0].scale == 1.0 and taken[0].preview_every > 1 and taken[-1].scale < taken[1].scale < 1.0
    assert degrader.to_dict()["step"] == STEPS[-1].name and len(degrader.to_dict()["steps"]) == len(STEPS) - 1


def _windows_until_a_step(degrader: Degrader, clock: _Clock, lost: int, limit: int = 1000) -> tuple[int, object]:
    """(windows of 60 frames with ``lost`` dropped until the degrader moved, the step it took)."""
    for n in range(1, limit + 1):
        step = _window(degrader, clock, 60, lost)
        if step is not None:
            return n, step
    return limit, None


def test_steps_back_up_after_calm_and_backs_off_when_the_try_fails() -> None:
    """Load that passed does not leave the call at half resolution; a machine that is too slow
    gets fewer and fewer tries (each try that fails doubles the calm the next one needs)."""
    stats, clock = PipelineStats(), _Clock()
    degrader = Degrader(stats, preview=False, clock=clock)
    for _ in range(2 * BEHIND_WINDOWS):
        _window(degrader, clock, 40, 20)
    assert degrader.step == STEPS[-1]
    n, step = _windows_until_a_step(degrader, clock, 0)  # the load went away
    assert step == STEPS[-2] and n * WINDOW_S == CALM_S and degrader.history[-1]["up"]
    n, step = _windows_until_a_step(degrader, clock, 20)  # it came back at once: the try failed
    assert step == STEPS[-1] and n == BEHIND_WINDOWS and not degrader.history[-1]["up"]
    waits = []
    for _ in range(6):
        n, step = _windows_until_a_step(degrader, clock, 0)
        assert step == STEPS[-2]
        waits.append(n * WINDOW_S)
        _windows_until_a_step(degrader, clock, 20)
    assert waits == [min(CALM_S * 2 ** k, MAX_CALM_S) for k in range(1, 7)]
    for _ in range(3):  # a few lost frames now and then (1 of 60) still count as calm
        _window(degrader, clock, 60, 1)
    assert _windows_until_a_step(degrader, clock, 0)[1] == STEPS[-2]
    n, step = _windows_until_a_step(degrader, clock, 0)  # held: the next step up needs plain calm
    assert step == STEPS[0] and n * WINDOW_S == MAX_CALM_S


def test_a_try_that_fails_a_minute_later_still_lengthens_the_wait() -> None:
    stats, clock = PipelineStats(), _Clock()
    degrader = Degrader(stats, preview=False, clock=clock)
    for _ in range(BEHIND_WINDOWS):
        _window(degrader, clock, 40, 20)
    assert _windows_until_a_step(degrader, clock, 0)[1] == STEPS[0]  # tried after CALM_S
    for _ in range(int(60 / WINDOW_S)):  # a minute at full resolution, then behind again
        assert _window(degrader, clock, 60, 0) is None
    assert _windows_until_a_step(degrader, clock, 20)[1].scale < 1.0
    n, step = _windows_until_a_step(degrader, clock, 0)
    assert step == STEPS[0] and n * WINDOW_S == 2 * CALM_S


def test_without_a_preview_the_first_step_is_resolution() -> None:
    stats, clock = PipelineStats(), _Clock()
    degrader = Degrader(stats, preview=False, clock=clock)
    steps = [s for s in (_window(degrader, clock, 40, 20) for _ in range(BEHIND_WINDOWS)) if s is not None]
    assert len(steps) == 1 and steps[0].scale < 1.0


def test_portrait_fitted_to_the_frame_never_enlarged(media) -> None:
    image = cv2.imread(str(media / "portraits" / "biden2.jpg"))[..., ::-1]  # 1200x1200
    fitted = fit_to_frame(image, (1280, 720))
    assert fitted.shape == (720, 720, 3)
    assert abs(float(fitted.mean()) - float(image.mean())) < 1.0  # the same picture, smaller
    assert fit_to_frame(image, (4000, 3000)) is image and fit_to_frame(image, None) is image
    wide = fit_to_frame(image, (300, 1000))
    assert wide.shape == (300, 300, 3) and np.asarray(wide).dtype == np.uint8


def _lp_s42_config(media):
    return build_app_config({"source": str(media / "portraits" / "lp_s42.jpg"),
                             "driving": str(media / "driving" / "lp_d10.mp4"), "output": "unused.mp4"})


def test_a_step_down_leaves_one_engine_to_close(media, monkeypatch) -> None:
    """The engine built at the lower resolution replaces the session's, and the replaced one is
    closed there and then: a run that stepped down twice held three engines before (the 2-hour
    soak's RSS grew by ~60 MB at its two steps and never came back)."""
    config = _lp_s42_config(media)
    closed: list[str] = []
    with Session(config, live=True) as session:
        builder = EngineBuilder(config, session)
        full = session.engine
        monkeypatch.setattr(full, "close", lambda: closed.append("full"))
        builder.start(0.5, full.expression)
        builder.join()
        half = builder.take()
        assert half is not None and half.source.image.shape[0] == full.source.image.shape[0] // 2
        monkeypatch.setattr(half, "close", lambda: closed.append("half"))
        session.replace_engine(half)
        assert session.engine is half and closed == ["full"]
    assert closed == ["full", "half"]  # the session closes the one it holds, once


def test_a_build_not_taken_before_the_next_step_is_closed(media, monkeypatch) -> None:
    """Steps go both ways now: when a run steps down and straight back up before the infer thread
    took the first build, that build is closed, not left behind."""
    config = _lp_s42_config(media)
    closed: list[int] = []
    with Session(config, live=True) as session:
        builder = EngineBuilder(config, session)
        full = session.engine
        builder.start(0.5, full.expression)
        builder.join()
        half = builder.ready
        assert half is not None
        monkeypatch.setattr(half, "close", lambda: closed.append(half.source.image.shape[0]))
        builder.start(1.0, full.expression)
        builder.join()
        again = builder.take()
        assert closed == [full.source.image.shape[0] // 2]
        assert again is not None and again.source.image.shape == full.source.image.shape
        again.close()
