"""Stage 3: the reenacted face over the source background, pasted into the full-resolution frame.

``output = M * face + (1 - M) * background``, where the background layer is the source with the
face inpainted away, warped with the same map as the face. The geometric reenactor's map keeps
every face pixel inside the target face oval (the oval is a mesh edge and the crop border is
fixed), and outside the removed region the background layer *is* the source; so for the geometric
path both layers are one remap of the source crop and the mix reduces to the paste. ``mix`` is the
general form the neural reenactor (which predicts its own mask) goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from facepaint.engine.source_face import SourceFace


@dataclass(frozen=True)
class MixerConfig:
    """Background-mixer settings.

    Attributes:
        feather: Gaussian sigma of the mask feather, in face widths (for ``mix``).
    """

    feather: float = 0.015

    def __post_init__(self) -> None:
        if not 0.0 <= self.feather <= 0.2:
            raise ValueError(f"feather must be in [0, 0.2], got {self.feather}")


class BackgroundMixer(Protocol):
    """Composites a reenacted crop over the source (geometric now, FACEGAN's mixer later)."""

    def mix(self, face: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
        """``M * face + (1 - M) * background`` on crops."""

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """The full-resolution source frame with ``crop`` in the source's crop box."""


class GeometricBackgroundMixer:
    """Soft-mask compositing and paste-back into the full source frame.

    Args:
        source: The prepared source face.
        config: Mixer settings.
    """

    def __init__(self, source: SourceFace, config: MixerConfig) -> None:
        self.source = source
        self.config = config
        self._frame = source.image.copy()

    def warped_background(self, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
        """The face-removed source crop warped with the face's backward map."""
        return cv2.remap(self.source.background, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def mix(self, face: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
        """``M * face + (1 - M) * background``, with ``mask`` feathered by ``config.feather``."""
        sigma = self.config.feather * self.source.face_width
        m = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) if sigma > 0 else mask.astype(np.float32)
        m = m[..., None]
        out = face.astype(np.float32) * m + background.astype(np.float32) * (1.0 - m)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """The full source frame with the in-image part of ``crop`` in place (a new array; the
        crop border is fixed by the warp, so no seam needs blending)."""
        x0, y0, x1, y1 = self.source.box
        left, top = self.source.pad[:2]
        out = self._frame.copy()
        out[y0:y1, x0:x1] = crop[top:top + y1 - y0, left:left + x1 - x0]
        return out
