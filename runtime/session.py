"""One source portrait ready to be driven: the tracker, the portrait tracked with it, and the engine.

``Session`` opens the three together and closes them together, for every mode (offline render,
live, eval, bench, the motion sweep, batch). ``Driver`` is the one per-frame composition of the
stages: track → (offline: centred smoothing) → render. The offline and live pipelines run its
methods on their own threads; ``Driver.run`` runs them in order on the caller's thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from facepaint.compile.first_use import compile_on_first_use
from facepaint.engine.faces import FaceGroup
from facepaint.engine.reenactment import Measure, ReenactmentEngine
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Frame, StreamTimestamps, Tracker, load_plugin
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.runtime.background import open_background
from facepaint.runtime.config import AppConfig
from facepaint.runtime.faces import every_face, open_faces
from facepaint.runtime.parallel_track import ParallelTracking
from facepaint.runtime.portrait import Portrait, load_portrait
from facepaint.runtime.reference import Reference, stream_reference


def open_tracker(config: TrackerConfig, *, live: bool) -> Tracker:
    """The tracker plugin named by ``config.name``.

    A file render turns the tracker's own causal smoothing off: it smooths with
    ``CenteredSmoother`` instead, which looks ahead and so does not make the output trail the face.
    """
    return load_plugin("facepaint.trackers", config.name)(config if live else dataclasses.replace(config,
                                                                                                 smoothing=False))


def open_engine(config: AppConfig, portrait: Portrait, *, tracker: Tracker | None = None,
                reference: Reference | None = None, still: bool = False, live: bool = False,
                measure: Measure | None = None) -> ReenactmentEngine:
    """The reenactment engine prepared for ``portrait``, complete: its stages built from
    ``config.engine``, its edit checked with ``tracker`` (image mode; None: not checked) or with
    ``measure`` when given, its neutral (``reference``; None: the first driving face) and
    ``config.background`` given; ``still`` and ``live`` as ``ReenactmentEngine`` takes them.
    """
    background = open_background(config.background, portrait.image, portrait.face) if config.background else None
    compile_on_first_use(config.engine)  # what a named backend needs, built here: the engine never compiles
    if measure is None and tracker is not None:
        measure = measure_with(tracker)
    return ReenactmentEngine(config.engine, portrait.image, portrait.face, measure=measure,
                             neutral=reference.face if reference else None, live=live, still=still,
                             background=background)


def measure_with(tracker: Tracker) -> Measure:
    """The ``measure`` of an engine: the blendshapes of the largest face ``tracker`` finds in a still."""

    def measure(image: np.ndarray) -> np.ndarray | None:
        faces = tracker.track(image, None)
        return np.asarray(faces[0].blendshapes, np.float64) if faces else None

    return measure


class Session:
    """Tracker, portrait and engine for one source; a context manager that closes all three once.

    Whoever opens a session owns it: it closes it, and ``reset``s it before driving it again.

    Args:
        config: The run's configuration (source, face index, tracker, engine, driving, background).
        live: Live mode: the tracker smooths causally; otherwise smoothing is left to ``Driver``.
        still: The driving input is a single image (see ``open_engine``).
        image: The portrait already read (None: read it here).
        limit: Frames of ``config.driving`` the render covers (None: all), looked over by
            ``--reference auto`` before the engine is built.
        found: With ``config.faces``: every face of ``image`` already found, largest first (a
            video source's base frame, numbered as its track numbers them); empty: searched here.

    Raises:
        FacepaintError: The portrait cannot be read or has no face, or a stage cannot be built;
            whatever was opened is closed first.
    """

    def __init__(self, config: AppConfig, *, live: bool, still: bool = False, image: np.ndarray | None = None,
                 limit: int | None = None, found: tuple[FaceTrack, ...] = ()) -> None:
        self.live, self.still = live, still
        self._found = found
        self._smooth = not live and config.tracker.smoothing
        self._mode = config.engine.transformer.reference
        self.tracker = open_tracker(config.tracker, live=live)
        try:
            self.portrait = load_portrait(config, self.tracker, image)
            self.tracker.reset()  # the portrait was tracked in image mode; the stream starts afresh
            self.reference = stream_reference(self._mode, config.driving, self.tracker, limit, still=still, live=live)
            self.engine: ReenactmentEngine | FaceGroup = self._open_engine(config)
        except BaseException:
            self.tracker.close()
            raise
        self._closed = False

    def _open_engine(self, config: AppConfig) -> ReenactmentEngine | FaceGroup:
        """The portrait's engine, or with ``config.faces`` one per chosen face (``runtime.faces``)."""
        def one(portrait: Portrait, measure: Measure | None = None) -> ReenactmentEngine:
            return open_engine(config, portrait, tracker=self.tracker, reference=self.reference, still=self.still,
                               live=self.live, measure=measure)

        if config.faces is None:
            return one(self.portrait)
        if self._found:
            self.portrait = dataclasses.replace(self.portrait, faces=self._found, face=self._found[0], face_index=0)
        else:
            self.portrait = every_face(self.portrait, self.tracker)
        return open_faces(config.faces, self.portrait, one, tracker=self.tracker,
                          background=config.background is not None)

    def reset(self, driving: str, limit: int | None = None) -> None:
        """Ready for a new driving stream, as a session newly opened on it would be: the tracker
        and engine forget the last stream, and the neutral is found again for ``driving``."""
        self.tracker.reset()
        self.reference = stream_reference(self._mode, driving, self.tracker, limit, still=self.still, live=self.live)
        self.engine.reset(self.reference.face)

    def driver(self) -> Driver:
        """A new per-frame driver over this session's tracker and engine."""
        return Driver(self.tracker, self.engine, CenteredSmoother() if self._smooth else None)

    def replace_engine(self, engine: ReenactmentEngine) -> None:
        """Own ``engine`` from now on (live's lower resolution, ``live_degrade``) and close the one it
        replaces; the caller has stopped rendering with that one."""
        old, self.engine = self.engine, engine
        old.close()

    def close(self) -> None:
        """Close the engine and the tracker once; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.engine.close()
        finally:
            self.tracker.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, eq=False)
class Tracked:
    """A driving frame and the face found in it (None: no face)."""

    frame: Frame
    face: FaceTrack | None

    @property
    def captured_at(self) -> float:
        """When the driving frame was captured or decoded: latency is measured from it."""
        return self.frame.captured_at


@dataclass(frozen=True, eq=False)
class Rendered(Tracked):
    """A tracked driving frame and the output frame rendered from it."""

    output: np.ndarray


class Driver:
    """track → smooth → render for one driving stream.

    Args:
        tracker: The session's tracker, in video mode.
        engine: The session's engine.
        smoother: Centred smoothing of the tracked faces (offline), or None (live: the tracker
            smooths causally; or smoothing turned off).
    """

    def __init__(self, tracker: Tracker, engine: ReenactmentEngine | FaceGroup,
                 smoother: CenteredSmoother | None) -> None:
        self.tracker, self.engine, self.smoother = tracker, engine, smoother
        self.parallel: ParallelTracking | None = None
        self._without_face = 0
        self._timestamp = StreamTimestamps()

    @property
    def frames_without_face(self) -> int:
        """Tracked frames with no face so far."""
        return self._without_face + (self.parallel.frames_without_face if self.parallel else 0)

    def track_in_parallel(self, extra: list[Tracker]) -> ParallelTracking:
        """Track with this driver's tracker and ``extra`` ones side by side from now on (offline:
        ``parallel.push`` / ``parallel.flush`` replace ``track``). The caller closes ``extra``
        and the returned object."""
        self.parallel = ParallelTracking([self.tracker, *extra], Tracked)
        return self.parallel

    def track(self, frame: Frame) -> Tracked:
        """Track the largest face; the timestamp comes from pts and is kept strictly increasing
        (MediaPipe's video mode refuses a timestamp that does not grow)."""
        faces = self.tracker.track(frame.image, self._timestamp(frame.pts))
        if not faces:
            self._without_face += 1
        return Tracked(frame, faces[0] if faces else None)

    def smooth(self, item: Tracked) -> list[Tracked]:
        """The frames whose centred smoothing window is complete (all of them without a smoother)."""
        if self.smoother is None:
            return [item]
        return [Tracked(t.frame, face) for t, face in self.smoother.push(item, item.face)]

    def flush(self) -> list[Tracked]:
        """The frames still held by the smoothing window at the end of the stream."""
        if self.smoother is None:
            return []
        return [Tracked(t.frame, face) for t, face in self.smoother.flush()]

    def render(self, item: Tracked) -> Rendered:
        """Reenact the portrait with the tracked face (None: the engine holds its last pose)."""
        return Rendered(item.frame, item.face, self.engine.render(item.frame.image, item.face, item.frame.pts))

    def run(self, frames: Iterable[Frame]) -> Iterator[Rendered]:
        """Every frame rendered, in order, on the caller's thread (no pipeline, no encoding)."""
        for frame in frames:
            for item in self.smooth(self.track(frame)):
                yield self.render(item)
        for item in self.flush():
            yield self.render(item)
