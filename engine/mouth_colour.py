"""The mouth interior's colour from the portrait (``mouth_colour = "portrait"``).

The driving frame gives the interior's layout (teeth bands, the dark cavity, the tongue); its
colour comes from the portrait. Both faces are read against their own lips (always visible, lit
like the inside of the mouth). First the driving interior is scaled per RGB channel by the ratio of
the portrait's lips to the driver's (von Kries; the teeth keep the driver's lightness): a camera's
tint or white balance is a per-channel gain, so it cancels, and the same face driving itself is
left as it is. Then, in Lab, its chroma
is pulled towards the portrait's own chroma model (for a lightness relative to the lips: the lips'
chroma fading with darkness, blending into the teeth's, measured where the portrait shows teeth)
as far as either face lacks colour: a black-and-white portrait (lips' chroma ~0) gets the model
alone, which is grey; a greyscale camera, whose interior carries no colour to keep, gets the
portrait's model in the driver's lightness.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.engine.geometry import box_around, smoothstep
from facepaint.engine.topology import Topology

# Teeth chroma as a share of the lips' when the face shows no teeth: teeth are near-neutral,
# warmed by the same light and skin (about a third of the lips' a/b in the validate clips' frames).
TEETH_SHARE = 0.3
# Lightness over the lips' at which a pixel is read as teeth (fully from 1.6: teeth are about
# 1.5x as light as lips; the cavity and tongue are darker than the lips).
TEETH_FROM, TEETH_FULL = 1.0, 1.6
# Pixels lighter than this share of the lips' count as teeth when measuring them, and how many
# make a measurement (fewer: the face shows no teeth).
TEETH_MEASURE = 1.3
# Lips' chroma (a/b length) from which a face counts as fully coloured; less saturated faces keep
# a share of the driver's chroma, black-and-white ones (and greyscale cameras) none. Natural lips
# in the shared portraits and validate clips measure 25-40.
SATURATED_LIPS = 20.0
TEETH_MIN_PIXELS = 20


@dataclass(frozen=True, eq=False)
class LipColour:
    """The colours a face's mouth is read against.

    Attributes:
        lips: (3,) median Lab of the lips (between the outer and inner lip contours).
        rgb: (3,) median RGB of the lips.
        teeth: (2,) a/b of the teeth (measured when shown, else ``TEETH_SHARE`` of the lips').
        measured: Whether ``teeth`` was measured.
    """

    lips: np.ndarray
    rgb: np.ndarray
    teeth: np.ndarray
    measured: bool

    def model(self, rel: np.ndarray) -> np.ndarray:
        """(..., 2) the expected a/b of an interior pixel of lightness ``rel`` times the lips'."""
        w = np.asarray(smoothstep(rel, TEETH_FROM, TEETH_FULL))[..., None]
        return self.lips[1:] * np.minimum(rel, 1.0)[..., None] * (1.0 - w) + self.teeth * w


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """Float32 CIE Lab (L 0..100) of an RGB image (uint8 or float 0..255)."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """Float32 RGB 0..255 of a Lab image."""
    return cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0


def lip_colour(image: np.ndarray, landmarks: np.ndarray, topo: Topology, teeth: bool = True) -> LipColour:
    """The lips' median colour in ``image`` (``landmarks`` in its pixels) and, with ``teeth``,
    the teeth's a/b from the light pixels inside the inner lips (when there are enough of them).
    Only the pixels used are converted to Lab: this runs on every driving frame."""
    outer, inner = landmarks[topo.lips_outer, :2], landmarks[topo.lips_inner, :2]
    x0, y0, x1, y1 = box_around(outer, 1.0, (image.shape[1], image.shape[0]))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return LipColour(np.array([50.0, 0.0, 0.0], np.float32), np.full(3, 119.0, np.float32),
                         np.zeros(2, np.float32), False)
    rgb = image[y0:y1, x0:x1]
    ring = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(ring, [np.round(outer - (x0, y0)).astype(np.int32)], 1)
    hole = np.zeros_like(ring)
    cv2.fillPoly(hole, [np.round(inner - (x0, y0)).astype(np.int32)], 1)
    on_lips = (ring > 0) & (hole == 0)
    if on_lips.sum() < 4:
        on_lips = np.ones_like(on_lips, bool)
    lips_rgb = np.median(rgb[on_lips], 0).astype(np.float32) + 1.0
    lips = to_lab(lips_rgb[None, None] - 1.0)[0, 0]
    inside = to_lab(rgb[hole > 0][None])[0] if teeth and hole.any() else np.zeros((0, 3), np.float32)
    bright = inside[inside[:, 0] > TEETH_MEASURE * lips[0]]
    if len(bright) >= TEETH_MIN_PIXELS:
        return LipColour(lips, lips_rgb, np.median(bright[:, 1:], 0).astype(np.float32), True)
    return LipColour(lips, lips_rgb, (TEETH_SHARE * lips[1:]).astype(np.float32), False)


def portrait_interior(patch: np.ndarray, source: LipColour, driver: LipColour) -> np.ndarray:
    """The driving interior ``patch`` (RGB float, already fitted to the target opening) recoloured
    to the portrait: see the module notes. ``driver`` is measured on the driving frame (its
    teeth are not needed)."""
    # Tissue (tongue, cavity: darker than the lips) takes the portrait's lips' colour and
    # lightness, the full per-channel ratio; teeth (lighter) keep the driver's lightness, only their
    # tint moves: a darker-skinned portrait has darker lips, not darker teeth (with the full ratio
    # everywhere the driver's teeth came out beige behind Obama's lips; with the driver's lightness
    # everywhere the cavity came out pale behind Biden's, and dlib read his mouth as closing).
    luma = patch @ np.array([0.299, 0.587, 0.114], np.float32)
    teeth = np.asarray(smoothstep(luma / _luma(driver.rgb), TEETH_FROM, TEETH_FULL), np.float32)
    lighten = _luma(driver.rgb) / _luma(source.rgb) - 1.0
    balanced = np.clip(patch * (source.rgb / driver.rgb) * (1.0 + lighten * teeth)[..., None], 0, 255)
    # How much of the balanced driver's own chroma stays: all of it when both faces have colour
    # (then the Lab round trip would change nothing, and is skipped).
    keep = min(1.0, float(np.linalg.norm(source.lips[1:])) / SATURATED_LIPS,
               float(np.linalg.norm(driver.lips[1:])) / SATURATED_LIPS)
    if keep >= 1.0:
        return balanced
    lab = to_lab(balanced)
    # The driver's own lightness: a channel gain towards a grey portrait clips the light teeth.
    lab[..., 0] = to_lab(np.clip(patch, 0, 255))[..., 0]
    rel = lab[..., 0] / max(float(driver.lips[0]), 1.0)
    lab[..., 1:] = keep * lab[..., 1:] + (1.0 - keep) * source.model(rel)
    return from_lab(lab)


def _luma(rgb: np.ndarray) -> float:
    """Rec. 601 luma of one RGB colour."""
    return float(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
