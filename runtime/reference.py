"""``--reference auto`` offline: a look-ahead pass over the driving clip before the render.

The choosing is ``facepaint.engine.reference``; this module feeds it faces. The clip is decoded
and tracked once before the engine is built (every frame up to ``PREPASS_FRAMES``, then evenly
spaced frames) and the engine is given the chosen face as its neutral. Live, the engine refines
its own neutral (``ReenactmentEngine(live=True)``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facepaint.engine.reference import choose_reference
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import FileSource, StreamTimestamps, load_plugin
from facepaint.plugins.media import READ_IMAGES

# Frames tracked by the look-ahead at most (about 3 s of tracking on 2 cores); longer clips are
# sampled evenly, which still finds the calm stretches a talking head returns to between phrases.
PREPASS_FRAMES = 300


@dataclass(frozen=True)
class Reference:
    """Which driving face motion is measured from.

    Attributes:
        mode: ``auto``, ``first`` or ``source``.
        index: Driving frame index of the reference face (None: the first face the render meets,
            or the source itself).
        face: The reference face to calibrate on before rendering (None: the engine calibrates
            on the first face it meets).
    """

    mode: str
    index: int | None = None
    face: FaceTrack | None = None

    def describe(self) -> str:
        """For the summary line: ``auto, frame 37``, ``first frame`` or ``the source's face``."""
        if self.mode == "source":
            return "the source's face"
        if self.index is None:
            return "first face"
        return f"{self.mode}, frame {self.index}"


def sampled_faces(video: Any, tracker: Any, limit: int | None) -> tuple[list[int], list[FaceTrack | None]]:
    """Track evenly spaced frames of ``video`` (a ``VideoSource``) in video mode.

    Returns:
        The frame indices tracked and the face found in each (None: no face).
    """
    total = video.frame_count if limit is None else min(limit, video.frame_count or limit)
    stride = max(1, math.ceil((total or PREPASS_FRAMES) / PREPASS_FRAMES))
    timestamp = StreamTimestamps()
    indices, faces = [], []
    for frame in video:
        if limit is not None and frame.index >= limit:
            break
        if frame.index % stride:
            continue
        found = tracker.track(frame.image, timestamp(frame.pts))
        indices.append(frame.index)
        faces.append(found[0] if found else None)
    return indices, faces


def find_reference(mode: str, video: Any, tracker: Any, limit: int | None) -> Reference:
    """The reference of an offline render (``auto``: the calmest sampled face of the clip).

    Args:
        mode: The configured reference mode.
        video: A fresh ``VideoSource`` on the driving clip (consumed; the caller closes it).
        tracker: The render's tracker; it is reset afterwards, ready for the render's stream.
        limit: Frames the render covers (None: all).
    """
    if mode != "auto":
        return Reference(mode)
    try:
        indices, faces = sampled_faces(video, tracker, limit)
    finally:
        tracker.reset()
    best = choose_reference(faces)
    if best is None:
        return Reference(mode)
    return Reference(mode, indices[best], faces[best])


def open_driving(path: str) -> FileSource:
    """The driving source: ``ImageSource`` for still images (by extension), else ``VideoSource``.

    Raises:
        InputError: When the file is missing, unreadable, corrupt or has no video stream.
    """
    name = "image" if Path(path).suffix.lower() in READ_IMAGES else "video"
    return load_plugin("facepaint.sources", name)(path)


def stream_reference(mode: str, driving: str | None, tracker: Any, limit: int | None, *, still: bool,
                     live: bool) -> Reference:
    """The reference of one driving stream: a still image is read against the source, a live
    stream finds its own (the engine follows it), a file ``auto`` looks over the clip first."""
    if still:
        return Reference("source")
    if live or driving is None:
        return Reference(mode)
    with contextlib.closing(open_driving(driving)) as video:
        return find_reference(mode, video, tracker, limit)
