"""The source video's own track: every frame tracked once before the render, smoothed, checked.

A video source is looked over whole before any output is written, so that each of its bad cases
is refused before the work (no face at all, shorter than ``MIN_SOURCE_S``, a change of resolution)
and a face that leaves for a while is known in advance: those frames pass through unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from facepaint.engine.errors import InputError, NoFaceError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import StreamTimestamps, Tracker, load_plugin
from facepaint.plugins.media import kind_of
from facepaint.plugins.trackers.smoothing import CenteredSmoother

# A clip shorter than this has too few frames to be a take (and usually is a still saved as a video).
MIN_SOURCE_S = 1.0
# Centred smoothing of the source's own landmarks: two frames either side, a wider window than the
# driver's (radius 1) because the source's expression is not what is transferred, only its place,
# and its jitter would otherwise shake the crop and the head ring the driver's motion rides on.
SOURCE_SMOOTH_RADIUS = 2
SOURCE_SMOOTH_SIGMA = 1.2


def is_video_source(path: str | None) -> bool:
    """Whether ``--source`` names a video file (by its suffix, ``plugins.media``)."""
    return path is not None and kind_of(path) == "video"


@dataclass(frozen=True, eq=False)
class SourceTrack:
    """The source video, tracked.

    Attributes:
        path: The file.
        rate: Its exact frame rate (the output's).
        size: (width, height) of every frame.
        faces: The largest face of each frame, smoothed (None: no face in that frame); with
            ``--faces``, the largest chosen face present in it.
        audio: Its audio stream (None: none).
        members: ``--faces``: each chosen face's number and its smoothed faces, frame by frame
            (``runtime.source_faces``); empty for the largest face alone.
        found: ``--faces``: every face of the base frame, largest first (the numbers count them).
        base: ``--faces``: the base frame, where every chosen face is found (None: the first
            frame with a face).
    """

    path: str
    rate: Fraction
    size: tuple[int, int]
    faces: tuple[FaceTrack | None, ...]
    audio: Any
    members: Mapping[int, tuple[FaceTrack | None, ...]] = field(default_factory=dict)
    found: tuple[FaceTrack, ...] = ()
    base: int | None = None

    @property
    def fps(self) -> float:
        """Frames per second."""
        return float(self.rate)

    @property
    def base_index(self) -> int:
        """The frame the engines are prepared on: ``base``, or the first frame with a face."""
        if self.base is not None:
            return self.base
        return next(i for i, face in enumerate(self.faces) if face is not None)

    @property
    def frames_without_face(self) -> int:
        """Source frames where no face was found (passed through unchanged)."""
        return sum(face is None for face in self.faces)


def open_source_video(path: str) -> Any:
    """The source video as a ``VideoSource`` (frames, rate, size, audio).

    Raises:
        InputError: Missing, unreadable or without a video stream.
    """
    return load_plugin("facepaint.sources", "video")(path)


def source_frames(path: str, size: tuple[int, int]) -> Generator[np.ndarray, None, None]:
    """The RGB frames of the source video, each checked to be ``size`` (w, h).

    Raises:
        InputError: A frame of another size (the clip changes resolution part-way).
    """
    with contextlib.closing(open_source_video(path)) as video:
        for frame in video:
            h, w = frame.image.shape[:2]
            if (w, h) != size:
                raise InputError(f"source video {path} changes resolution at frame {frame.index} ({size[0]}x{size[1]}"
                                 f" -> {w}x{h}); re-encode it at one size (ffmpeg -i IN -vf scale={size[0]}:{size[1]} "
                                 "OUT.mp4)")
            yield frame.image


class ClipReader:
    """Frames of a clip by index, decoded in order; asking for an earlier frame (a loop) starts the
    clip again. Holds one frame, whatever the clip's length.

    Args:
        frames: Opens the clip: a new iterator over its RGB frames.
    """

    def __init__(self, frames: Callable[[], Generator[np.ndarray, None, None]]) -> None:
        self._open = frames
        self._frames: Generator[np.ndarray, None, None] | None = None
        self._last: tuple[int, np.ndarray] | None = None

    def get(self, index: int) -> np.ndarray:
        """The RGB frame ``index`` (it must exist)."""
        if self._frames is None or self._last is None or index < self._last[0]:
            self.close()
            self._frames = self._open()
            self._last = (0, next(self._frames))
        while self._last[0] < index:
            self._last = (self._last[0] + 1, next(self._frames))
        return self._last[1]

    def close(self) -> None:
        """Close the clip (a later ``get`` opens it again)."""
        if self._frames is not None:
            self._frames.close()  # closes the file the generator holds open
        self._frames, self._last = None, None


def track_source(path: str, tracker: Tracker, limit: int | None = None) -> SourceTrack:
    """Track every frame of the source video (video mode) and smooth the track.

    Args:
        path: The source video.
        tracker: A tracker in video mode, not smoothing (``open_tracker(live=False)``); reset after.
        limit: Frames to track at most (None: all).

    Raises:
        InputError: Unreadable, shorter than ``MIN_SOURCE_S``, or changing resolution.
        NoFaceError: No face in any frame.
    """
    with contextlib.closing(open_source_video(path)) as video:
        rate, size, audio = video.rate, video.size, video.audio
        if video.frame_count is not None:  # the header's count: refused before any tracking
            check_length(path, video.frame_count, float(rate))
    timestamp = StreamTimestamps()
    raw: list[FaceTrack | None] = []
    for index, image in enumerate(source_frames(path, size)):
        if limit is not None and index >= limit:
            break
        found = tracker.track(image, timestamp(index / float(rate)))
        raw.append(found[0] if found else None)
    faces = smoothed(raw)
    tracker.reset()
    if limit is None or len(faces) < limit:
        check_length(path, len(faces), float(rate))
    if not any(face is not None for face in faces):
        raise NoFaceError(f"no face found in any frame of the source video {path}; use a clip with a clearly "
                          "visible face")
    return SourceTrack(path=path, rate=Fraction(rate), size=size, faces=faces, audio=audio)


def smoothed(faces: Sequence[FaceTrack | None]) -> tuple[FaceTrack | None, ...]:
    """A source face's track, frame by frame, through the centred smoothing (so the source's own
    jitter does not add to the driver's); None stays None."""
    smoother = CenteredSmoother(SOURCE_SMOOTH_RADIUS, SOURCE_SMOOTH_SIGMA)
    out = [face for i, raw in enumerate(faces) for _, face in smoother.push(i, raw)]
    return tuple(out + [face for _, face in smoother.flush()])


def check_length(path: str, frames: int, fps: float) -> None:
    """Refuse a source video shorter than ``MIN_SOURCE_S``."""
    if frames / fps < MIN_SOURCE_S:
        raise InputError(f"source video {path} is {frames / fps:.2f} s long ({frames} frames); a video source needs "
                         f"at least {MIN_SOURCE_S:g} s (for one picture, give a still image as --source)")
