"""Stage 3: the reenacted face over the source background, pasted into the full-resolution frame.

``output = M * face + (1 - M) * background``, where the background is the source crop with the
person removed (inpainted once at prepare time) and M is the reenactor's person mask (for the
geometric reenactor, the source's head mask carried by the warp): the head moves, the background
does not. A reenactor that returns no mask has already made the whole crop, which goes straight
to the paste.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from facepaint.engine.face_reenactor import Reenacted
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import check_kind


@dataclass(frozen=True)
class MixerConfig:
    """Background-mixer settings.

    Attributes:
        kind: ``geometric`` (this module) or ``neural`` (FACEGAN's mixer, ``facepaint.engine.neural``).
        feather: Gaussian sigma of the mask feather, in face widths.
    """

    kind: str = "geometric"
    feather: float = 0.015

    def __post_init__(self) -> None:
        check_kind("mixer", self.kind)
        if not 0.0 <= self.feather <= 0.2:
            raise ValueError(f"feather must be in [0, 0.2], got {self.feather}")


class BackgroundMixer(Protocol):
    """Composites a reenacted crop over the source background, then pastes it into the frame."""

    # One "model: backend on device" line per network the stage runs (none for geometric ones).
    models: tuple[str, ...]

    def mix(self, reenacted: Reenacted) -> np.ndarray:
        """The finished crop (RGB uint8, crop size): ``M * face + (1 - M) * background``."""

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """The full-resolution source frame with ``crop`` in the source's crop box (a new array)."""

    def close(self) -> None:
        """Release what the stage holds (a model, device memory); later calls do nothing."""


class GeometricBackgroundMixer:
    """Soft-mask compositing over the person-removed source crop, and paste-back.

    Args:
        source: The prepared source face.
        config: Mixer settings.
    """

    models: tuple[str, ...] = ()

    def __init__(self, source: SourceFace, config: MixerConfig) -> None:
        self.source = source
        self.config = config
        self._frame = source.image.copy()

    def follow_source(self, source: SourceFace) -> None:
        """Mix over and paste into ``source`` (the next frame of a video source) from now on."""
        self.source = source
        self._frame = source.image

    def mix(self, reenacted: Reenacted) -> np.ndarray:
        """See ``BackgroundMixer.mix``; the mask is feathered by ``config.feather`` face widths."""
        if reenacted.mask is None:
            return reenacted.image
        # Only the feather the mask does not carry yet (the engine folds it into the source's head
        # mask once, at prepare time, when the warp is what carries the mask): about 1 ms a frame
        # at 512x512 that need not be spent per frame.
        missing = self.config.feather ** 2 - reenacted.feather ** 2
        sigma = float(np.sqrt(missing)) * self.source.face_width if missing > 1e-12 else 0.0
        m: np.ndarray = reenacted.mask if reenacted.mask.dtype == np.float32 else reenacted.mask.astype(np.float32)
        if sigma > 0:
            m = cv2.GaussianBlur(m, (0, 0), sigma)
        # One saturating pass in OpenCV (about 20 times faster than the float numpy expression).
        return cv2.blendLinear(reenacted.image, self.source.background, m, 1.0 - m)

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """See ``BackgroundMixer.paste`` (the crop border is fixed by the warp: no seam to blend)."""
        x0, y0, x1, y1 = self.source.box
        left, top = self.source.pad[:2]
        out = self._frame.copy()
        out[y0:y1, x0:x1] = crop[top:top + y1 - y0, left:left + x1 - x0]
        return out

    def close(self) -> None:
        """Nothing to release (see ``BackgroundMixer.close``)."""
