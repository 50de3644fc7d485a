"""Many faces of one source image (``--faces all|0,2``), all following the same driving face.

Each chosen face has its own ``ReenactmentEngine`` (its own prepared crop, person-removed
background and head mask); ``FaceGroup`` renders every one of them and composes them onto one
frame. An engine's render is the whole source image with only its crop box changed, and inside
that box only the pixels its own person moved over or uncovered differ from the source (its
inpainting removes its own person and nobody else). So each face is composed with the mask
"where my render differs from the source": its head and the background it uncovered, never a
neighbour that merely lies inside its crop box. Faces are composed from the smallest to the
largest, so the largest (taken as the nearest) wins where two heads overlap.

A face whose render raises is left as it is in the source for that frame, never the frame: the
error is counted per face and reported (``FaceGroup.failures``), not hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.expression import ExpressionConfig
from facepaint.engine.reenactment import ReenactmentEngine
from facepaint.engine.track import FaceTrack

ALL_FACES = "all"
_SUM_CHANNELS = np.ones((1, 3), np.float32)
# What ``faces`` holds: "all", or face numbers (0 = largest, the tracker's order).
FacesSpec = str | tuple[int, ...]


def parse_faces(text: str) -> FacesSpec:
    """``--faces`` text: ``all`` or a comma list of face numbers (``0,2``).

    Raises:
        ConfigError: For anything else, a negative number or a number given twice.
    """
    value = text.strip().lower()
    if value == ALL_FACES:
        return ALL_FACES
    try:
        numbers = tuple(int(part) for part in value.split(","))
        check_faces(numbers)
    except ValueError:
        raise ConfigError(f"--faces '{text}' is not 'all' or a comma list of distinct face numbers such as 0,2 "
                          "(0 = largest)") from None
    return numbers


def check_faces(spec: FacesSpec) -> None:
    """Refuse a ``faces`` setting (config key or flag) that names no faces or a face twice.

    Raises:
        ValueError: ``spec`` is a string other than ``all``, empty, negative or repeated.
    """
    if isinstance(spec, str):
        if spec != ALL_FACES:
            raise ValueError(f"faces must be 'all' or a list of face numbers such as [0, 2], got {spec!r}")
        return
    if not spec or min(spec) < 0 or len(set(spec)) != len(spec):
        raise ValueError(f"faces must be distinct face numbers >= 0 (0 = largest), got {list(spec)}")


def chosen_faces(spec: FacesSpec, found: int, path: str) -> tuple[int, ...]:
    """The face numbers ``spec`` picks among the ``found`` faces of ``path``.

    Raises:
        InputError: A number beyond the faces found (the message says how many there are).
    """
    if isinstance(spec, str):  # "all", checked by check_faces
        return tuple(range(found))
    numbers = spec
    high = max(numbers)
    if high >= found:
        count = f"{found} face" + ("s" if found != 1 else "")
        raise InputError(f"--faces {','.join(map(str, numbers))} is out of range: {count} found in {path} "
                         f"(use 0..{found - 1} or all, 0 = largest)")
    return numbers


@dataclass(eq=False)
class GroupFace:
    """One face of the group: its number (0 = largest), its engine and how often it failed."""

    index: int
    engine: ReenactmentEngine
    failures: int = 0
    first_error: str = ""


@dataclass(eq=False)
class FaceGroup:
    """Several engines over one source image, driven together and composed onto one frame.

    Args:
        image: The source RGB uint8 image every engine was prepared from.
        faces: The faces' engines, each with its number; composed from the highest number (the
            smallest face) down, so the largest comes last.
        unprepared: Face numbers that could not be prepared, with why (left as in the source).
    """

    image: np.ndarray
    faces: Sequence[GroupFace]
    unprepared: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.faces:
            raise InputError("no face of the source could be prepared; use a photo with clearly visible faces")
        self.faces = sorted(self.faces, key=lambda f: -f.index)  # smallest first, largest last

    @property
    def indices(self) -> tuple[int, ...]:
        """The prepared faces' numbers, largest face first."""
        return tuple(sorted(f.index for f in self.faces))

    @property
    def failures(self) -> dict[int, tuple[int, str]]:
        """Face number -> (frames it failed in, the first error), for faces that failed."""
        return {f.index: (f.failures, f.first_error) for f in self.faces if f.failures}

    def describe(self) -> str:
        """``faces 0,1`` plus the faces left as they are and why, for summaries."""
        text = f"faces {','.join(map(str, self.indices))}"
        for index, why in sorted(self.unprepared.items()):
            text += f"; face {index} left as is (not prepared: {why})"
        for index, (count, error) in sorted(self.failures.items()):
            text += f"; face {index} left as is in {count} frames ({error})"
        return text

    def render(self, frame: np.ndarray | None, face: FaceTrack | None, t: float) -> np.ndarray:
        """One output frame: every face's ``ReenactmentEngine.render`` composed (see the module)."""
        return self.compose(self.image, lambda member: member.engine.render(frame, face, t))

    def still(self) -> np.ndarray:
        """Every face at rest with its edit (``ReenactmentEngine.still``), composed."""
        return self.compose(self.image, lambda member: member.engine.still())

    def compose(self, image: np.ndarray, draw: Callable[[GroupFace], np.ndarray | None],
                order: Sequence[GroupFace] | None = None) -> np.ndarray:
        """``image`` with each face's render composed over it (see the module).

        Args:
            image: The frame every engine rendered over (the source image, or a video source's
                frame the engines follow).
            draw: A face's render of ``image``; None leaves that face as it is (not a failure:
                a video source's face absent from this frame).
            order: The faces from the farthest to the nearest (None: ``faces``, largest last).
        """
        out = image.copy()
        for member in self.faces if order is None else order:
            try:
                rendered = draw(member)
            except Exception as exc:  # noqa: BLE001 - one face's failure leaves that face, not the frame
                member.failures += 1
                member.first_error = member.first_error or f"{type(exc).__name__}: {exc}".splitlines()[0]
                continue
            if rendered is None:
                continue
            x0, y0, x1, y1 = member.engine.source.box
            region = rendered[y0:y1, x0:x1]
            # Nonzero where any channel differs (the sum saturates at 255). OpenCV: a tenth of the
            # time of numpy's any() and copyto(where=) on a 500x512 box (1.2 ms against 15 ms here).
            changed = cv2.transform(cv2.absdiff(region, image[y0:y1, x0:x1]), _SUM_CHANNELS)
            cv2.copyTo(region, changed, out[y0:y1, x0:x1])  # writes into the view of ``out``
        return out

    # ---- the rest of the engine's surface, applied to every face ----

    @property
    def expression(self) -> ExpressionConfig:
        """The edit every face was given."""
        return self.faces[-1].engine.expression

    @property
    def following_neutral(self) -> bool:
        """See ``ReenactmentEngine.following_neutral`` (every face follows the same driving face)."""
        return self.faces[-1].engine.following_neutral

    def reference_state(self) -> str:
        """See ``ReenactmentEngine.reference_state`` (the largest face's; all see the same driver)."""
        return self.faces[-1].engine.reference_state()

    @property
    def models(self) -> tuple[str, ...]:
        """See ``ReenactmentEngine.models`` (every face runs the same stages)."""
        return self.faces[-1].engine.models

    def set_expression(self, expression: ExpressionConfig) -> None:
        """See ``ReenactmentEngine.set_expression`` (unchecked: the live hotkeys' path)."""
        for member in self.faces:
            member.engine.set_expression(expression)

    def set_motion(self, **changes: Any) -> None:
        """See ``ReenactmentEngine.set_motion``."""
        for member in self.faces:
            member.engine.set_motion(**changes)

    def calibrate(self, face: FaceTrack) -> None:
        """See ``ReenactmentEngine.calibrate``."""
        for member in self.faces:
            member.engine.calibrate(face)

    def reset(self, neutral: FaceTrack | None = None) -> None:
        """See ``ReenactmentEngine.reset``; the failure counts start again too."""
        for member in self.faces:
            member.engine.reset(neutral)
            member.failures, member.first_error = 0, ""

    def recalibrate(self) -> None:
        """See ``ReenactmentEngine.recalibrate``."""
        for member in self.faces:
            member.engine.recalibrate()

    def close(self) -> None:
        """Close every engine (all of them, even when one fails); later calls do nothing.

        Raises:
            Exception: The first error an engine raised while closing.
        """
        errors = []
        for member in self.faces:
            try:
                member.engine.close()
            except Exception as exc:  # noqa: BLE001 - close the others, then report the first
                errors.append(exc)
        if errors:
            raise errors[0]
