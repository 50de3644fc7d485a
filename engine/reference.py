"""The driving face's neutral: which face relative motion is measured from (``--reference``).

Relative motion maps the reference driving face to the source as it is, so a reference caught
mid-word (mouth open) makes every later, smaller opening a *closing*: the output's mouth stays shut.
``choose_reference`` looks over a clip for its calmest, most frontal face; ``NeutralEstimator`` does
the same on a live stream, starting from the first face and moving to calmer ones as they come.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from facepaint.engine.track import BLENDSHAPE_NAMES, FaceTrack

REFERENCES = ("auto", "first", "source")
# Accepted for the name the option had before ``auto`` existed.
REFERENCE_ALIASES = {"first-frame": "first"}

# Blendshapes that read near zero on a calm face, with their weight in the neutral score. The jaw
# counts double: an open mouth in the reference is what breaks lip motion (issue 12); a blink in
# it (or lids lowered by a downward look or a squint) would make every open eye read as widened
# and damp its blinks; brows and smile shift the whole upper or lower face.
_CALM_WEIGHTS = {
    "jawOpen": 2.0, "mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "browInnerUp": 1.0,
    "browDownLeft": 0.5, "browDownRight": 0.5, "browOuterUpLeft": 0.5, "browOuterUpRight": 0.5,
    "eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0, "eyeWideLeft": 0.5, "eyeWideRight": 0.5,
    "eyeSquintLeft": 0.5, "eyeSquintRight": 0.5, "eyeLookDownLeft": 0.5, "eyeLookDownRight": 0.5,
    "eyeLookUpLeft": 0.5, "eyeLookUpRight": 0.5, "mouthFunnel": 1.0, "mouthPucker": 0.5,
    "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5, "mouthStretchLeft": 0.5, "mouthStretchRight": 0.5,
    "mouthLowerDownLeft": 0.5, "mouthLowerDownRight": 0.5, "mouthUpperUpLeft": 0.5,
    "mouthUpperUpRight": 0.5, "cheekSquintLeft": 0.25, "cheekSquintRight": 0.25,
    "noseSneerLeft": 0.25, "noseSneerRight": 0.25,
}
_CALM_INDEX = np.array([BLENDSHAPE_NAMES.index(n) for n in _CALM_WEIGHTS])
_CALM_WEIGHT = np.array(list(_CALM_WEIGHTS.values()))
# Head turn at which the pose term equals a fully open jaw's weight share: 20 degrees of yaw or
# pitch costs as much as a jawOpen of 0.25. A turned reference is not wrong (motion stays relative)
# but a frontal one leaves the most room to turn both ways.
POSE_SCALE_DEG = 40.0
# Faces on each side whose score a face shares: a reference must sit in a calm stretch, not on a
# single frame where the tracker blinked or a transient passed.
CALM_WINDOW = 2
# Live: seconds from the first face during which any calmer face becomes the reference (the
# warm-up), how much calmer (in ``neutral_score``) a face must be after it, since small differences
# are tracker noise and each change is a blended step in the output, and how many consecutive faces
# must all be calm (the score is their worst).
LIVE_WARMUP_S = 3.0
LIVE_MARGIN = 0.08
LIVE_WINDOW = 5
# During the live warm-up a face must still be this much calmer than the reference to replace it,
# so tracker noise on a still face does not restart the output's blend every frame.
WARMUP_MARGIN = 0.02
# Offline, the reference's jawOpen must be within this much of the clip's 20th percentile.
CLOSED_JAW = (20.0, 0.05)
# Live, a reference whose mouth is this much more closed replaces the current one whatever else.
JAW_STEP = 0.1


def normalise_reference(name: str) -> str:
    """``name`` with its alias resolved (``first-frame`` -> ``first``).

    Raises:
        ValueError: When ``name`` is not a reference mode.
    """
    name = REFERENCE_ALIASES.get(name, name)
    if name not in REFERENCES:
        valid = ", ".join(REFERENCES + tuple(REFERENCE_ALIASES))
        raise ValueError(f"reference must be one of {valid}, got '{name}'")
    return name


def neutral_score(face: FaceTrack) -> float:
    """How far ``face`` is from a calm, frontal face (0 = perfectly calm and frontal).

    A weighted sum of the expression blendshapes that are near zero at rest plus a head-turn
    term; only differences between faces of one person matter (people rest at different values).
    """
    expression = float(np.asarray(face.blendshapes, np.float64)[_CALM_INDEX] @ _CALM_WEIGHT)
    yaw, pitch = (float(a) for a in np.asarray(face.rotation, np.float64)[:2])
    return expression + (yaw * yaw + pitch * pitch) / POSE_SCALE_DEG ** 2


def calm_scores(faces: Sequence[FaceTrack | None], window: int = CALM_WINDOW) -> np.ndarray:
    """(T,) per face the worst ``neutral_score`` within ``window`` faces either side (inf where
    there is no face, and around it: a face about to be lost is rarely a steady one)."""
    return _window_max(np.array([np.inf if f is None else neutral_score(f) for f in faces]), window)


def choose_reference(faces: Sequence[FaceTrack | None]) -> int | None:
    """Index of the calmest, most frontal face of a clip, None when there is no face.

    The mouth comes first: only faces whose jaw is among the clip's most closed (``CLOSED_JAW``)
    compete, then ``calm_scores`` picks among them. A talker who smiles and raises her brows
    whenever her lips meet (lp_d10) would otherwise get a mid-word reference with calm brows.
    """
    window = CALM_WINDOW
    scores = calm_scores(faces, window)
    if not np.isfinite(scores).any():
        # Too few faces in a row for a full calm window: each face on its own.
        window = 0
        scores = calm_scores(faces, window)
        if not np.isfinite(scores).any():
            return None
    jaw = _window_max(np.array([np.inf if f is None else f.blendshape("jawOpen") for f in faces]), window)
    closed = jaw <= np.percentile(jaw[np.isfinite(jaw)], CLOSED_JAW[0]) + CLOSED_JAW[1]
    return int(np.argmin(np.where(closed, scores, np.inf)))


def _window_max(values: np.ndarray, window: int) -> np.ndarray:
    """Per element the largest value within ``window`` elements either side."""
    if values.size == 0 or window == 0:
        return values
    padded = np.pad(values, window, mode="edge")
    return np.stack([padded[k:k + values.size] for k in range(2 * window + 1)]).max(axis=0)


class NeutralEstimator:
    """Live reference: the first face at once, then calmer ones while the face is calm."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=LIVE_WINDOW)
        self._best = (np.inf, np.inf)  # the reference's (jawOpen, neutral_score)
        self._started: float | None = None
        self.pinned = False
        self.changes = 0

    @property
    def score(self) -> float:
        """The current reference's ``neutral_score`` (inf before the first face)."""
        return self._best[1]

    def pin(self) -> None:
        """The user chose the reference (the recalibrate hotkey): keep it, refine no more."""
        self.pinned = True

    def update(self, face: FaceTrack | None, t: float) -> bool:
        """See one face at stream time ``t``; True when it should become the reference.

        As offline, the mouth comes first: a clearly more closed mouth (``JAW_STEP``) wins
        outright; otherwise a face must be as closed and calmer overall.
        """
        if face is None:
            self._recent.clear()
            return False
        self._recent.append((face.blendshape("jawOpen"), neutral_score(face)))
        if self._started is None:
            self._started, self._best = t, self._recent[-1]
            self.changes += 1
            return True
        if self.pinned or len(self._recent) < LIVE_WINDOW:
            return False
        jaw, calm = (max(values) for values in zip(*self._recent, strict=True))
        margin = WARMUP_MARGIN if t - self._started <= LIVE_WARMUP_S else LIVE_MARGIN
        closer = jaw < self._best[0] - JAW_STEP
        calmer = jaw <= self._best[0] + CLOSED_JAW[1] and calm < self._best[1] - margin
        if closer or calmer:
            self._best = (jaw, calm)
            self.changes += 1
            return True
        return False
