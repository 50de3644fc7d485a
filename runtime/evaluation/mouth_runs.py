"""Self-reenactment runs for the mouth protocol (``runtime.evaluation.mouth``, ``bench/mouth.py``).

Source = a clip's first frame, driving = the clip (``--reference first``), tracked as an offline
render tracks (MediaPipe in video mode, smoothing off, then ``CenteredSmoother``), rendered by the
engine frame by frame. The driving clip may be tinted (``DRIVERS``), the source made black and white,
or the driving frame withheld (``blind``: the interior painted with no driver pixels, as for an
expression edit); the truth is always the clean clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facepaint.engine.face_reenactor import ReenactorConfig
from facepaint.engine.landmark_transformer import TransformerConfig
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.track import FaceTrack
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.runtime.evaluation.mouth import (
    DRIVERS,
    FLICKER_FRAMES,
    MIN_PIXELS,
    OPEN_GAP,
    clip_medians,
    dlib_gap,
    frame_figures,
    greyscale,
    interior_mask,
    mp_gap,
)


@dataclass(frozen=True)
class MouthSetting:
    """One row of the protocol.

    Attributes:
        name: Row label.
        colour: ``ReenactorConfig.mouth_colour``.
        fill: ``ReenactorConfig.mouth_fill`` (``paint`` or ``neural``: the mouth net).
        driver: Key of ``DRIVERS`` applied to the driving clip.
        blind: Render with no driving frame (the interior from no driver pixels).
        bw_source: The source frame in greyscale (a black-and-white portrait, colour driver).
        track: Key of ``DRIVERS`` whose track drives the render; empty: the driver's own. The clean
            track under a tinted driver leaves only the tint's effect on the pixels the fill reads,
            not the tracker's reading of the tinted face.
    """

    name: str
    colour: str
    driver: str = "clean"
    fill: str = "paint"
    blind: bool = False
    bw_source: bool = False
    track: str = ""


def track_clip(tracker, frames: Sequence[np.ndarray], fps: float) -> tuple[FaceTrack | None, list[FaceTrack | None]]:
    """(source face of frame 0 in image mode, every frame's face in video mode)."""
    tracker.reset()
    found = tracker.track(np.ascontiguousarray(frames[0]), None)
    tracker.reset()
    faces = []
    for i, frame in enumerate(frames):
        got = tracker.track(np.ascontiguousarray(frame), int(round(1000 * i / fps)))
        faces.append(got[0] if got else None)
    return (found[0] if found else None), faces


def smoothed(faces: Sequence[FaceTrack | None]) -> list[FaceTrack | None]:
    """The faces after the offline render's centred smoothing."""
    smoother = CenteredSmoother()
    out = [face for i, face in enumerate(faces) for _, face in smoother.push(i, face)]
    return out + [face for _, face in smoother.flush()]


class _Recorder:
    """An engine stage that keeps the last result of its ``method`` (a transformer's target
    shape, a reenactor's ``Reenacted``)."""

    def __init__(self, base, method: str) -> None:
        self.base, self.last, self._method = base, None, getattr(base, method)
        setattr(self, method, self._call)

    def __getattr__(self, name: str):
        return getattr(self.base, name)

    def _call(self, *args):
        self.last = self._method(*args)
        return self.last


def setting_config(setting: MouthSetting, config: EngineConfig | None = None) -> EngineConfig:
    """``config`` (default settings: None) with the row's reference, mouth colour and mouth fill."""
    base = config or EngineConfig()
    return dataclasses.replace(base, transformer=dataclasses.replace(base.transformer or TransformerConfig(),
                                                                     reference="first"),
                               reenactor=dataclasses.replace(base.reenactor or ReenactorConfig(),
                                                             mouth_colour=setting.colour, mouth_fill=setting.fill))


class _Flicker:
    """Mean frame-to-frame change inside the true interior, output and truth, over the first
    ``FLICKER_FRAMES`` pairs of consecutive judged frames."""

    def __init__(self) -> None:
        self.out: list[float] = []
        self.truth: list[float] = []
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, out: np.ndarray | None, truth: np.ndarray | None, mask: np.ndarray | None) -> None:
        """One frame (None: a frame not judged, which breaks the run of consecutive frames)."""
        if out is None or truth is None or mask is None:
            self.prev = None
            return
        if self.prev is not None and len(self.out) < FLICKER_FRAMES:
            both = mask & self.prev[2]
            if both.sum() >= MIN_PIXELS:
                self.out.append(float(np.abs(out[both].astype(np.float32) - self.prev[0][both]).mean()))
                self.truth.append(float(np.abs(truth[both].astype(np.float32) - self.prev[1][both]).mean()))
        self.prev = (out.astype(np.float32), truth.astype(np.float32), mask)

    def ratio(self) -> float:
        """Output over truth (nan without pairs)."""
        return float(np.mean(self.out) / max(np.mean(self.truth), 1e-6)) if self.out else float("nan")


def run_setting(setting: MouthSetting, frames: Sequence[np.ndarray], truth_points: Sequence[np.ndarray | None],
                source_face: FaceTrack, faces: Sequence[FaceTrack | None], judge, fps: float,
                config: EngineConfig | None = None) -> dict:
    """Per-clip medians of ``MOUTH_KEYS``, the flicker ratio, the stage gaps and ms per render.

    Args:
        setting: The row.
        frames: The clean clip (the truth); frame 0 is the source.
        truth_points: dlib's 68 points per frame (None: no face).
        source_face: The source frame's face (tracked on the source as given to the engine).
        faces: Raw tracked faces of the driving clip as given to the engine (tinted if the row is).
        judge: A ``GeometryJudge``.
        fps: The clip's frame rate.
        config: Base engine settings (reference, mouth colour and fill are set here).
    """
    import time

    source = greyscale(frames[0]) if setting.bw_source else frames[0]
    tint = DRIVERS[setting.driver]
    rows, seconds, flicker = [], [], _Flicker()
    stages: list[tuple[float, float, float]] = []
    with ReenactmentEngine(setting_config(setting, config), source, source_face) as engine:
        engine.transformer = recorder = _Recorder(engine.transformer, "transform")
        engine.reenactor = painter = _Recorder(engine.reenactor, "render")
        for i, (face, raw) in enumerate(zip(smoothed(faces), faces, strict=True)):
            if i == 0 or face is None:
                continue
            start = time.perf_counter()
            out = engine.render(None if setting.blind else tint(frames[i]), face, i / fps)
            seconds.append(time.perf_counter() - start)
            pts = truth_points[i]
            fig = None if pts is None else frame_figures(out, frames[i], pts, judge.landmarks(out))
            if pts is None or fig is None:
                flicker.add(None, None, None)
                continue
            fig["fill"] = painter.last.mouth_alpha if painter.last is not None else float("nan")
            rows.append(fig)
            if raw is not None and recorder.last is not None:
                truth_mp = mp_gap(raw.landmarks)
                stages.append((mp_gap(face.landmarks) / truth_mp, mp_gap(recorder.last.landmarks) / truth_mp,
                               fig["opening"]))
            flicker.add(out, frames[i], interior_mask(pts, out.shape[:2]))
    result = clip_medians(rows)
    med = np.nanmedian(np.array(stages), 0) if stages else np.full(3, np.nan)
    result.update(frames=len(rows), flicker=flicker.ratio(), smooth_gap=float(med[0]), target_gap=float(med[1]),
                  render_ms=1000.0 * float(np.median(seconds)) if seconds else float("nan"))
    return result


def open_frames(truth_points: Sequence[np.ndarray | None]) -> int:
    """How many frames of a clip have the true mouth open (``OPEN_GAP``)."""
    return sum(1 for p in truth_points if p is not None and dlib_gap(p) >= OPEN_GAP)
