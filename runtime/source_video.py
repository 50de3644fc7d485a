"""A video as the source: ``--source take1.mp4 --driving me.mp4 --output take2.mp4``.

The source clip is tracked whole first (``source_track``), the engine is prepared once on its
first frame with a face, and the driving clip is tracked once. Then every source frame becomes one
output frame: the frame's face (``engine.source_video.frame_source``) is moved by the driver's
expression, keeping the frame's own head motion (``--source-motion keep``) or taking the driver's
(``driver``), over the frame itself. The output has the source's frame rate and length (``--fit``
says how the driving clip is laid over it) and the audio ``--audio`` picks. A source frame with no
face is passed through unchanged. ``--expression`` without ``--driving`` edits every frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np

from facepaint.engine.errors import ConfigError
from facepaint.engine.faces import FaceGroup, GroupFace
from facepaint.engine.reenactment import ReenactmentEngine
from facepaint.engine.source_video import VideoLayout, base_rotation, frame_source, video_layout
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import load_plugin
from facepaint.plugins.media import WRITE_VIDEOS
from facepaint.runtime.config import AppConfig
from facepaint.runtime.offline import check_paths
from facepaint.runtime.pipeline import BLOCK, Pipeline
from facepaint.runtime.reference import open_driving
from facepaint.runtime.session import Session, open_tracker
from facepaint.runtime.source_faces import track_clip
from facepaint.runtime.source_track import ClipReader, SourceTrack, source_frames
from facepaint.runtime.stats import PipelineStats, write_stats_json


def driving_index(i: int, track: SourceTrack, count: int, fps: float, fit: str) -> int | None:
    """The driving frame shown with source frame ``i`` (None: the driving clip has ended, ``cut``).

    Args:
        i: Source frame index.
        track: The source clip.
        count: Driving frames (1: a still driving image, shown with every frame).
        fps: The driving clip's frame rate.
        fit: ``loop``, ``cut`` or ``stretch`` (``SourceVideoConfig.fit``).
    """
    if count == 1:
        return 0
    if fit == "stretch":
        return min(count - 1, i * count // len(track.faces))
    j = int(math.floor(i / track.fps * fps + 1e-9))
    if fit == "loop":
        return j % count
    return j if j < count else None


@dataclass(frozen=True, eq=False)
class Driving:
    """The driving clip, tracked: its frame count, rate, smoothed faces and audio."""

    path: str
    count: int
    fps: float
    faces: tuple[FaceTrack | None, ...]
    audio: Any


def check_video_source(config: AppConfig) -> None:
    """Refuse what a video source does not do, before any work.

    Raises:
        ConfigError: Neural stages, ``--background``, ``--face-index`` > 0, ``--expressions``, a
            still image output, or ``--source-motion keep`` with ``--regions pose`` alone.
    """
    e = config.engine
    if "neural" in (e.transformer.kind, e.reenactor.kind, e.mixer.kind):
        raise ConfigError("a video source is driven by the geometric stages only; drop --transformer/--reenactor/"
                          "--mixer neural")
    if config.background is not None:
        raise ConfigError("--background works on a still source; a video source keeps its own frames behind the face")
    if config.face_index:
        raise ConfigError("a video source follows its largest face; drop --face-index")
    if config.expressions:
        raise ConfigError("--expressions makes a contact sheet of a still source; give an image as --source")
    if config.output is not None and not config.output.lower().endswith(WRITE_VIDEOS):
        raise ConfigError(f"a video source renders a video: give --output with {'/'.join(WRITE_VIDEOS)}")
    if config.source_video.motion == "keep" and tuple(e.transformer.regions) == ("pose",):
        raise ConfigError("--regions pose with --source-motion keep transfers nothing; use --source-motion driver")


def engine_config(config: AppConfig) -> AppConfig:
    """``config`` as the engine runs it on a video source: with ``--source-motion keep`` the
    driver's head pose is not transferred (the ``pose`` region is dropped)."""
    if config.source_video.motion != "keep":
        return config
    t = config.engine.transformer
    regions = tuple(r for r in t.regions if r != "pose")
    engine = dataclasses.replace(config.engine, transformer=dataclasses.replace(t, regions=regions))
    return dataclasses.replace(config, engine=engine)


def track_driving(session: Session, path: str, needed: int) -> Driving:
    """Track the first ``needed`` frames of the driving clip with the session's driver (video
    mode, centred smoothing)."""
    driver = session.driver()
    faces: dict[int, FaceTrack | None] = {}
    with contextlib.closing(open_driving(path)) as video:
        fps, audio = video.fps, video.audio
        for frame in video:
            if frame.index >= needed:
                break
            for item in driver.smooth(driver.track(frame)):
                faces[item.frame.index] = item.face
        for item in driver.flush():
            faces[item.frame.index] = item.face
    session.tracker.reset()
    return Driving(path, len(faces), fps, tuple(faces[i] for i in range(len(faces))), audio)


def read_frame(track: SourceTrack, index: int) -> np.ndarray:
    """Source frame ``index`` (decoded from the start)."""
    for i, image in enumerate(source_frames(track.path, track.size)):
        if i == index:
            return image
    raise ConfigError(f"source video {track.path} has no frame {index}")


class SourceVideoRender:
    """The per-frame work of a video-source render: source face, follow, render.

    With ``--faces`` (a ``FaceGroup``) every chosen face follows its own track: a face absent from
    a frame is left as it is there (counted in ``left``), and the faces present are composed from
    the smallest in that frame to the largest (the nearest is drawn last).

    Args:
        session: The session prepared on the base frame.
        track: The source clip, tracked.
        driving: The driving clip, tracked (None: no driver, ``--expression`` only).
        motion: ``keep`` or ``driver``.
    """

    def __init__(self, session: Session, track: SourceTrack, driving: Driving | None, motion: str) -> None:
        self.engine, self.track, self.driving, self.motion = session.engine, track, driving, motion
        engines = self.engine.faces if isinstance(self.engine, FaceGroup) else [GroupFace(0, self.engine)]
        self.layouts: dict[int, VideoLayout] = {f.index: video_layout(f.engine.source) for f in engines}
        self.passed_through = 0  # frames with none of the faces: passed through as they are
        self.left = dict.fromkeys(self.layouts, 0)  # face number -> frames it was absent from

    def render(self, item: tuple[int, np.ndarray, np.ndarray | None, FaceTrack | None]) -> tuple[int, np.ndarray]:
        """One output frame: (index, RGB) for (index, source frame, driving frame, driving face)."""
        i, image, frame_d, face_d = item
        return i, self.frame(i, image, frame_d, face_d, i / self.track.fps)

    def frame(self, i: int, image: np.ndarray, frame_d: np.ndarray | None, face_d: FaceTrack | None,
              t: float) -> np.ndarray:
        """Source frame ``i`` (``image``) driven by ``face_d`` in ``frame_d`` at stream time ``t``."""
        if isinstance(self.engine, FaceGroup):
            return self._group_frame(self.engine, i, image, frame_d, face_d, t)
        face = self.track.faces[i]
        if face is None:  # the face left the source: the frame passes through as it is
            self.passed_through += 1
            self.left[0] += 1
            return image
        return self._follow(self.engine, 0, image, face).render(frame_d, face_d, t)

    def _follow(self, engine: ReenactmentEngine, index: int, image: np.ndarray, face: FaceTrack) -> ReenactmentEngine:
        layout = self.layouts[index]
        source = frame_source(layout, image, face)
        engine.follow_source(source, base_rotation(layout, source) if self.motion == "driver" else None)
        return engine

    def _group_frame(self, group: FaceGroup, i: int, image: np.ndarray, frame_d: np.ndarray | None,
                     face_d: FaceTrack | None, t: float) -> np.ndarray:
        tracks = self.track.members
        present = sorted(((f, face) for f in group.faces if (face := tracks[f.index][i]) is not None),
                         key=lambda pair: pair[1].area)
        for member in group.faces:
            self.left[member.index] += tracks[member.index][i] is None
        if not present:
            self.passed_through += 1
            return image
        faces = {member.index: face for member, face in present}

        def draw(member: GroupFace) -> np.ndarray:
            return self._follow(member.engine, member.index, image, faces[member.index]).render(frame_d, face_d, t)

        return group.compose(image, draw, [member for member, _ in present])

    def describe(self) -> dict[str, Any]:
        """The statistics of a ``--faces`` render: which faces, and the frames each was absent from."""
        if not isinstance(self.engine, FaceGroup):
            return {}
        text = self.engine.describe() + "".join(f"; face {index} absent from {count} frames (left as is)"
                                                for index, count in sorted(self.left.items()) if count)
        return {"faces": text, "face_frames_absent": {str(k): v for k, v in self.left.items()}}


def _pairs(track: SourceTrack, driving: Driving | None, fit: str, limit: int
           ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, FaceTrack | None]]:
    reader = ClipReader(lambda: (f.image for f in _frames_of(driving.path))) if driving is not None else None
    try:
        for i, image in enumerate(source_frames(track.path, track.size)):
            if i >= limit:
                return
            if driving is None or reader is None:
                yield i, image, None, None
                continue
            j = driving_index(i, track, driving.count, driving.fps, fit)
            if j is None:
                return
            yield i, image, reader.get(j), driving.faces[j]
    finally:
        if reader is not None:
            reader.close()


def render_source_video(config: AppConfig, *, progress: Any = None) -> dict[str, Any]:
    """Render ``config.driving`` (or the ``--expression`` edit alone) onto the source video
    ``config.source`` into ``config.output``; the library entry point (CLI, ``eval``, ``batch``).

    Returns:
        The run's statistics (also written to ``config.stats_json`` when set).

    Raises:
        FacepaintError: Bad input (see ``check_video_source``, ``track_source``); nothing is left
            at the output path.
    """
    check_paths(config)
    check_video_source(config)
    started = time.perf_counter()
    with contextlib.closing(open_tracker(config.tracker, live=False)) as tracker:
        cap = None if config.duration is None else max(1, math.ceil(config.duration * _fps_of(config.source) - 1e-9))
        track = track_clip(config.source, tracker, config.faces, cap)
    limit = len(track.faces)
    base = read_frame(track, track.base_index)
    run = engine_config(config)
    with ExitStack() as stack:
        still = config.driving is not None and _count_of(config.driving) == 1
        session = stack.enter_context(Session(run, live=False, still=still or config.driving is None, image=base,
                                              found=track.found))
        driving = None
        if config.driving is not None:
            driving = track_driving(session, config.driving, _needed(track, limit, config))
        sink = load_plugin("facepaint.sinks", "file")(
            config.output, fps=track.rate, size=track.size, encoder=config.encoder,
            audio=_audio(config.source_video.audio, track, driving), overwrite=config.overwrite)
        stack.callback(sink.abort)  # an error or Ctrl-C from here on leaves no partial file
        job = SourceVideoRender(session, track, driving, config.source_video.motion)
        written = 0

        def encode(item: tuple[int, np.ndarray]) -> None:
            nonlocal written
            sink.write(_frame(item, track.fps))
            written += 1
            if progress is not None:
                progress.update(1)

        stats = PipelineStats()
        with Pipeline("source-video", stats=stats) as pipe:
            pipe.source("decode", _pairs(track, driving, config.source_video.fit, limit))
            pipe.stage("render", job.render, capacity=config.runtime.offline_queue, policy=BLOCK)
            pipe.stage("encode", encode, capacity=config.runtime.offline_queue, policy=BLOCK)
            pipe.start()
            pipe.join()
        sink.close()
    result = {**stats.to_dict(), "mode": "source-video", "output": str(config.output), "frames_written": written,
              "source_frames_without_face": track.frames_without_face,
              "frames_without_face": sum(f is None for f in driving.faces) if driving else 0,
              "output_size": list(track.size), "output_fps": round(track.fps, 4),
              "total_s": round(time.perf_counter() - started, 3), "reference": session.reference.describe(),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **job.describe()}
    if config.stats_json is not None:
        write_stats_json(config.stats_json, result)
    return result


def run_source_video(config: AppConfig) -> int:
    """The command: ``render_source_video`` plus a one-line summary on stderr; returns 0."""
    r = render_source_video(config)
    w, h = r["output_size"]
    print(f"facepaint-live: wrote {r['output']}: {r['frames_written']} frames {w}x{h} at {r['output_fps']:g} fps "
          f"from the source video, rendered in {r['elapsed_s']:.1f} s ({r['fps']:.1f} fps), "
          f"{r['source_frames_without_face']} source frames without a face (passed through), "
          f"{r['frames_without_face']} driving frames without a face" + (f"; {r['faces']}" if "faces" in r else ""),
          file=sys.stderr)
    return 0


def _frame(item: tuple[int, np.ndarray], fps: float) -> Any:
    from facepaint.plugins.base import Frame

    i, image = item
    return Frame(image=image, index=i, pts=i / fps, captured_at=time.perf_counter())


def _frames_of(path: str) -> Iterator[Any]:
    with contextlib.closing(open_driving(path)) as video:
        yield from video


def _fps_of(path: str) -> float:
    from facepaint.runtime.source_track import open_source_video

    with contextlib.closing(open_source_video(path)) as video:
        return float(video.fps)


def _count_of(path: str) -> int | None:
    with contextlib.closing(open_driving(path)) as video:
        return video.frame_count


def _needed(track: SourceTrack, limit: int, config: AppConfig) -> int:
    """Driving frames the render shows at most (all when the clip's header has no count)."""
    if config.driving is None:
        return 0
    with contextlib.closing(open_driving(config.driving)) as video:
        count, fps = video.frame_count, video.fps
    if count is None:
        return sys.maxsize
    shown = (driving_index(i, track, count, fps, config.source_video.fit) for i in range(limit))
    return max((j for j in shown if j is not None), default=0) + 1


def _audio(choice: str, track: SourceTrack, driving: Driving | None) -> Any:
    """The audio stream ``--audio`` picks (``auto``: the driving's when it has one, else the source's)."""
    theirs = driving.audio if driving is not None else None
    if choice == "auto":
        return theirs if theirs is not None else track.audio
    return {"source": track.audio, "driving": theirs, "none": None}[choice]
