"""Expression control: categorical expressions, AU and pose edits, as a change to the source's shape.

An edit is a blendshape offset (MediaPipe's 52 channels, the vocabulary every tracker here speaks)
plus a head-rotation offset. ``ExpressionBasis`` (fitted from tracked clips by
``bench/fit_expression_basis.py``) turns the blendshape offset into landmark displacements for one
source face; the landmark transformer adds them to whatever the driving motion asks for (nothing,
on a still), so the same edit works on stills, videos and live, with any transformer that accepts
a ``ShapeEdit``.

Expressions are FACS prototypes (issue 12) written in blendshapes. ``strength`` moves the source's
own blendshapes toward the prototype: 0 leaves the source as it is, 1 reaches the prototype
(``neutral``'s prototype is all zeros, so it removes the source's own expression), 1.5 goes beyond.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from facepaint.engine.errors import InputError, ModelError
from facepaint.engine.geometry import umeyama
from facepaint.engine.track import BLENDSHAPE_NAMES

BASIS_FILE = "expression_basis_v1.npz"
BASIS_SHA256 = "96c33bf08c6375123dfb91a9052a161a68ffdc42a36711a987ebb520e6ba63f1"

# FACS action units as MediaPipe blendshapes (a unilateral AU is one of its pair).
AU_BLENDSHAPES: dict[str, tuple[str, ...]] = {
    "AU1": ("browInnerUp",), "AU2": ("browOuterUpLeft", "browOuterUpRight"),
    "AU4": ("browDownLeft", "browDownRight"), "AU5": ("eyeWideLeft", "eyeWideRight"),
    "AU6": ("cheekSquintLeft", "cheekSquintRight"), "AU7": ("eyeSquintLeft", "eyeSquintRight"),
    "AU9": ("noseSneerLeft", "noseSneerRight"), "AU10": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "AU12": ("mouthSmileLeft", "mouthSmileRight"), "AU14": ("mouthDimpleLeft", "mouthDimpleRight"),
    "AU15": ("mouthFrownLeft", "mouthFrownRight"), "AU16": ("mouthLowerDownLeft", "mouthLowerDownRight"),
    "AU17": ("mouthShrugLower",), "AU18": ("mouthPucker",), "AU20": ("mouthStretchLeft", "mouthStretchRight"),
    "AU22": ("mouthFunnel",), "AU23": ("mouthPressLeft", "mouthPressRight"), "AU26": ("jawOpen",),
    "AU45": ("eyeBlinkLeft", "eyeBlinkRight"),
}

# FACS prototypes (issue 12): happiness AU6+AU12; surprise AU1+AU2+AU5+AU26; sadness AU1+AU4+AU15;
# anger AU4+AU5+AU7+AU23; disgust AU9+AU15+AU16; fear AU1+AU2+AU4+AU5+AU7+AU20+AU26; contempt
# unilateral AU12+AU14. Intensities in blendshape units (0..1), a clear but not extreme display.
# Anger's lid tightener and lip tightener are light: the basis learnt them from faces that
# squint and press while smiling, and at 0.6 / 0.7 they put a smiling source's smile back (Obama
# 0.60 under angry; 0.11 at 0.3 / 0.3). Sadness and disgust are milder than the rest: a corner
# depressor past 0.5 stretches a broad-smiling source's mouth into a grimace (docs/expressions.png,
# first version); disgust takes the upper-lip raiser (AU10) that usually comes with the nose wrinkle.
# Happiness also narrows the eyes (AU7, with AU6 the Duchenne smile) and parts and widens the
# lips a little (AU10 + AU20 + AU26: a broad smile shows the upper teeth); without them a broad
# smiling source loses smile under ``happy``.
PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {"AU6": 0.6, "AU7": 0.3, "AU12": 1.0, "AU10": 0.25, "AU20": 0.2, "AU26": 0.1},
    "sad": {"AU1": 0.6, "AU4": 0.3, "AU15": 0.5},
    "surprised": {"AU1": 0.9, "AU2": 0.8, "AU5": 0.7, "AU26": 0.5},
    "angry": {"AU4": 0.9, "AU5": 0.3, "AU7": 0.3, "AU23": 0.3},
    "disgusted": {"AU9": 0.7, "AU10": 0.3, "AU15": 0.4, "AU16": 0.3},
    "fearful": {"AU1": 0.8, "AU2": 0.5, "AU4": 0.4, "AU5": 0.7, "AU7": 0.3, "AU20": 0.6, "AU26": 0.3},
    "contempt": {"mouthSmileLeft": 0.8, "mouthDimpleLeft": 0.8},
    "neutral": {},
}
EXPRESSIONS = tuple(PROTOTYPES)
STRENGTH_RANGE = (0.0, 1.5)
# Gaze is where the person looks, not an expression: expressions (and ``neutral``) keep it.
_GAZE = {n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook")}
_EXPRESSIVE = np.array([n != "_neutral" and n not in _GAZE for n in BLENDSHAPE_NAMES])
POSE_AXES = ("yaw", "pitch", "roll")
POSE_RANGE_DEG = 45.0


def channels(name: str) -> tuple[str, ...]:
    """The blendshapes an AU (``AU12``, ``AU01``) or blendshape name (``mouthSmileLeft``) moves.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones).
    """
    key = name.strip()
    if key.upper().startswith("AU") and key[2:].isdigit():
        key = f"AU{int(key[2:])}"
    if key in AU_BLENDSHAPES:
        return AU_BLENDSHAPES[key]
    if key in BLENDSHAPE_NAMES and key != "_neutral":
        return (key,)
    raise ValueError(f"unknown AU '{name}'; use one of {', '.join(AU_BLENDSHAPES)} "
                     "or a MediaPipe blendshape name such as mouthSmileLeft")


@dataclass(frozen=True)
class ExpressionConfig:
    """A requested expression edit (``--expression``, ``--strength``, ``--au``, ``--pose``).

    Attributes:
        expression: One of ``EXPRESSIONS``, or None for no categorical expression.
        strength: How far toward the prototype, in ``STRENGTH_RANGE``.
        au: ``(name, value, add)`` AU / blendshape edits, applied after the expression: ``add``
            adds ``value``, otherwise the channel is set to ``value``.
        pose: (yaw, pitch, roll) offset in degrees (``FaceTrack``'s sign convention).
        basis_path: An expression basis file of one's own (None: the one shipped, checked by
            sha256).
    """

    expression: str | None = None
    strength: float = 1.0
    au: tuple[tuple[str, float, bool], ...] = ()
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    basis_path: str | None = None

    def __post_init__(self) -> None:
        if self.expression is not None and self.expression not in PROTOTYPES:
            raise ValueError(f"unknown expression '{self.expression}'; use one of {', '.join(EXPRESSIONS)}")
        lo, hi = STRENGTH_RANGE
        if not lo <= self.strength <= hi:
            raise ValueError(f"strength must be in [{lo:g}, {hi:g}], got {self.strength}")
        object.__setattr__(self, "au", tuple((str(n), float(v), bool(a)) for n, v, a in self.au))
        for name, value, _ in self.au:
            channels(name)
            if not -1.5 <= value <= 1.5:
                raise ValueError(f"AU value must be in [-1.5, 1.5], got {name}={value}")
        if len(self.pose) != 3 or any(abs(float(a)) > POSE_RANGE_DEG for a in self.pose):
            raise ValueError(f"pose offsets are yaw, pitch, roll within ±{POSE_RANGE_DEG:g} degrees, got {self.pose}")
        object.__setattr__(self, "pose", tuple(float(a) for a in self.pose))

    @property
    def active(self) -> bool:
        """Whether this edit changes anything."""
        return self.expression is not None or bool(self.au) or any(self.pose)


def blendshape_offset(config: ExpressionConfig, source: np.ndarray) -> np.ndarray:
    """(52,) blendshape change the edit asks of a source whose own blendshapes are ``source``."""
    source = np.asarray(source, np.float64)
    offset = np.zeros(len(BLENDSHAPE_NAMES))
    if config.expression is not None:
        target = np.where(_EXPRESSIVE, 0.0, source)
        for name, value in PROTOTYPES[config.expression].items():
            for ch in channels(name):
                # A source already past the prototype keeps its own: happy never shrinks a smile.
                i = BLENDSHAPE_NAMES.index(ch)
                target[i] = max(value, source[i])
        offset = config.strength * (target - source)
    for name, value, add in config.au:
        for ch in channels(name):
            i = BLENDSHAPE_NAMES.index(ch)
            offset[i] = offset[i] + value if add else value - source[i]
    return offset


def pose_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation of crop coordinates (x right, y down, z away from the camera) that turns a
    face by these angles in ``FaceTrack``'s convention (yaw > 0 to the image's left, pitch > 0
    up, roll > 0 clockwise in the image)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0.0, np.sin(y)], [0.0, 1.0, 0.0], [-np.sin(y), 0.0, np.cos(y)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), np.sin(p)], [0.0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0.0], [np.sin(r), np.cos(r), 0.0], [0.0, 0.0, 1.0]])
    return rz @ rx @ ry


@dataclass(frozen=True, eq=False)
class ShapeEdit:
    """An edit made concrete for one source face (crop pixels).

    Attributes:
        displacement: (N, 3) landmark change in the source's own pose.
        rotation: (3, 3) head-rotation offset about the face centre.
    """

    displacement: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass(frozen=True, eq=False)
class ExpressionBasis:
    """Per blendshape, how the landmarks move (``bench/fit_expression_basis.py``).

    Attributes:
        names: The K blendshape names modelled.
        basis: (K, N, 3) displacement per unit of each blendshape, in ``template`` units.
        template: (N, 3) the mean neutral face (unit face width) the basis is expressed on.
        version: File format / fit version.
    """

    names: tuple[str, ...]
    basis: np.ndarray
    template: np.ndarray
    version: int

    def displacement(self, offset: np.ndarray, landmarks: np.ndarray, stable: np.ndarray) -> np.ndarray:
        """(N, 3) landmark change for blendshape change ``offset`` (52,) on a face ``landmarks``
        (the template is fitted onto its ``stable`` points, so the change follows its pose and size)."""
        weights = np.array([offset[BLENDSHAPE_NAMES.index(n)] for n in self.names])
        moved = np.tensordot(weights, self.basis, axes=1)
        s, rot, _ = umeyama(self.template[stable], np.asarray(landmarks, np.float64)[stable])
        return s * moved @ rot.T


def refined_channels(config: ExpressionConfig, blendshapes: np.ndarray) -> np.ndarray:
    """(52,) bool: the channels a re-tracked edit is corrected on. Those the edit moves that carry
    the expression (its prototype's, its AUs', and the mouth's smile and opening, which
    ``neutral`` and every other expression remove); not the whole face, because people rest at
    non-zero readings (brows that read lowered) that no edit should chase to zero."""
    names = {"mouthSmileLeft", "mouthSmileRight", "jawOpen"}
    if config.expression is not None:
        names |= {ch for name in PROTOTYPES[config.expression] for ch in channels(name)}
    names |= {ch for name, _, _ in config.au for ch in channels(name)}
    moved = np.abs(blendshape_offset(config, blendshapes)) > 0.05
    return moved & np.array([n in names for n in BLENDSHAPE_NAMES])


def default_basis_path() -> Path:
    """The basis file shipped in the package."""
    return Path(str(resources.files("facepaint.engine") / "data" / BASIS_FILE))


def load_basis(path: str | Path | None = None, sha256: str | None = BASIS_SHA256) -> ExpressionBasis:
    """Read and check an expression basis file.

    Args:
        path: The ``.npz`` file (None: the one in the package).
        sha256: Expected digest (None: not checked, for a basis the user fitted).

    Raises:
        ModelError: Missing file, wrong digest or a malformed file.
    """
    path = Path(path) if path is not None else default_basis_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"expression basis {path} cannot be read ({exc.strerror}); reinstall facepaint-live "
                         "or refit it with bench/fit_expression_basis.py") from None
    digest = hashlib.sha256(raw).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ModelError(f"expression basis {path} has sha256 {digest[:16]}..., expected {sha256[:16]}...; "
                         "the file is damaged or from another version: reinstall facepaint-live")
    with np.load(path) as data:
        names = tuple(str(n) for n in data["names"])
        basis, template = data["basis"].astype(np.float64), data["template"].astype(np.float64)
        version = int(data["version"])
    if basis.shape != (len(names), *template.shape) or any(n not in BLENDSHAPE_NAMES for n in names):
        raise ModelError(f"expression basis {path} is malformed: basis {basis.shape}, template {template.shape}")
    return ExpressionBasis(names, basis, template, version)


def make_edit(config: ExpressionConfig, source, blendshapes: np.ndarray, basis: ExpressionBasis | None = None,
              correction: np.ndarray | None = None) -> ShapeEdit:
    """The edit ``config`` asks of a prepared source face.

    Args:
        config: The requested edit.
        source: The ``SourceFace`` (crop landmarks and topology).
        blendshapes: (52,) the source's own blendshapes (what ``neutral`` removes).
        basis: A loaded basis (None: loaded from ``config.basis_path`` or the package).
        correction: (52,) blendshape offset added to the edit's own (``refined_channels``).

    Raises:
        ModelError: When the basis cannot be loaded.
        InputError: When the source was tracked with a topology the basis does not model.
    """
    if basis is None:
        basis = load_basis(config.basis_path, None if config.basis_path else BASIS_SHA256)
    if source.landmarks.shape != basis.template.shape:
        raise InputError(f"expression control needs the {len(basis.template)}-point MediaPipe mesh; "
                         f"the source has {len(source.landmarks)} points: use --tracker mediapipe")
    offset = blendshape_offset(config, blendshapes)
    if correction is not None:
        offset = offset + correction
    moved = basis.displacement(offset, source.landmarks, source.topology.stable)
    return ShapeEdit(moved, pose_rotation(*config.pose))
