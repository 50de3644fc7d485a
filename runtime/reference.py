"""``--reference auto`` in the runtime: a look-ahead pass over a driving clip, and the live wrapper.

The choosing is ``facepaint.engine.reference``; this module feeds it faces. Offline, the clip is
decoded and tracked once before the render (every frame up to ``PREPASS_FRAMES``, then evenly
spaced frames) and the engine is calibrated on the chosen face. Live, ``AutoReferenceEngine`` wraps
the engine and recalibrates it whenever the estimator finds a calmer face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from facepaint.engine.reference import NeutralEstimator, choose_reference
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import StreamTimestamps

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


class AutoReferenceEngine:
    """A live engine whose neutral follows ``NeutralEstimator`` (``--reference auto`` with ``--cam``).

    The recalibrate hotkey still works: the face at that moment becomes the reference and stays
    (the user chose it), until the next press.

    Args:
        engine: The ``ReenactmentEngine`` to drive.
        estimator: The neutral estimator (default settings when None).
    """

    def __init__(self, engine: Any, estimator: NeutralEstimator | None = None) -> None:
        self.engine = engine
        self.estimator = estimator or NeutralEstimator()

    def recalibrate(self) -> None:
        """The next face becomes the reference and is kept."""
        self.estimator.pin()
        self.engine.recalibrate()

    def rest(self) -> Any:
        """The source at rest."""
        return self.engine.rest()

    def set_expression(self, expression: Any) -> None:
        """Apply an expression edit (``ReenactmentEngine.set_expression``)."""
        self.engine.set_expression(expression)

    def render(self, frame: Any, face: FaceTrack | None, t: float) -> Any:
        """Render one frame, first moving the reference to ``face`` when it is calmer."""
        if self.estimator.update(face, t):
            # The engine calibrates on the next face it sees (this one) and blends the step away.
            self.engine.recalibrate()
        return self.engine.render(frame, face, t)

    def describe(self) -> str:
        """For the exit table: how often the live reference moved."""
        state = "pinned by the hotkey" if self.estimator.pinned else "refined while calm"
        return f"auto ({self.estimator.changes} changes, {state})"
