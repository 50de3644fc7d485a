"""Background replacement (``--background IMAGE|COLOR|blur``): a person matte and the composite.

``facepaint.runtime.background`` reads the ``--background`` value; this module does no I/O.

The matte is found once on the source portrait, with no network: GrabCut seeded from the tracked
face. The face oval is certainly the person; the head above it (hair) and a torso trapezoid below
the chin (shoulders) are probably the person; the image border away from the torso is certainly
background. The output is ``M * frame + (1 - M) * background``, so pixels where the matte is 1
are the reenacted frame's own.
"""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.topology import get_topology
from facepaint.engine.track import FaceTrack

# GrabCut runs at this longest side: the matte's edge is feathered anyway, and 400 px keeps the
# one-off cost under a second on 2 cores.
MATTE_SIDE = 400
GRABCUT_ROUNDS = 4
HAIR_SCALE = 1.7  # the face oval grown about its centre (upwards-weighted) to cover the hair
FEATHER = 0.015  # matte edge blur, in face widths
BLUR = 0.12  # ``blur`` background: Gaussian sigma in face widths (a shallow depth of field)


def _face_polygon(face: FaceTrack) -> tuple[np.ndarray, float]:
    oval = np.asarray(face.landmarks, np.float64)[get_topology(face.topology).oval, :2]
    return oval, float(np.ptp(oval[:, 0]))


def person_matte(image: np.ndarray, face: FaceTrack) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the person (face, hair, shoulders) in ``image``.

    Args:
        image: RGB uint8 portrait.
        face: The tracked face in it.
    """
    h, w = image.shape[:2]
    s = min(1.0, MATTE_SIDE / max(h, w))
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    oval, width = _face_polygon(face)
    oval, width = oval * s, width * s
    sh, sw = small.shape[:2]
    seeds = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    border = max(2, round(0.03 * max(sh, sw)))
    seeds[:border], seeds[:, :border], seeds[:, -border:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
    centre = oval.mean(0)
    hair = centre + (oval - centre) * HAIR_SCALE - np.array([0.0, 0.35 * width])
    chin = oval[:, 1].max()
    torso = np.array([[centre[0] - 0.6 * width, chin], [centre[0] + 0.6 * width, chin],
                      [centre[0] + 1.6 * width, sh], [centre[0] - 1.6 * width, sh]])
    for poly in (hair, torso):
        cv2.fillPoly(seeds, [np.round(poly).astype(np.int32)], int(cv2.GC_PR_FGD))
    cv2.fillPoly(seeds, [np.round(oval).astype(np.int32)], int(cv2.GC_FGD))
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    rect = (0, 0, sw, sh)  # unused with GC_INIT_WITH_MASK; the typed binding wants a sequence
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), seeds, rect, bgd, fgd, GRABCUT_ROUNDS,
                cv2.GC_INIT_WITH_MASK)
    person = _solid(np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8))
    matte = cv2.resize(person, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = FEATHER * width / s
    matte = cv2.GaussianBlur(matte, (0, 0), sigma) if sigma > 0.3 else matte
    # Inside the person the blur leaves 0.9999...: snap it to 1, so those pixels stay the frame's own.
    matte[matte > 0.995] = 1.0
    face_full = np.zeros((h, w), np.uint8)
    cv2.fillPoly(face_full, [np.round(oval / s).astype(np.int32)], 1)
    return np.maximum(matte, face_full.astype(np.float32))


def _solid(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of a 0/1 mask with its holes filled (a lapel pin or a watch
    that GrabCut gave to the background is still the person), as float32."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask.astype(np.float32)
    keep = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(keep, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    solid = np.zeros_like(keep)
    cv2.drawContours(solid, contours, -1, 1, thickness=cv2.FILLED)
    return solid.astype(np.float32)


def blurred(image: np.ndarray, face: FaceTrack) -> np.ndarray:
    """The portrait blurred as a shallow depth of field would (the ``blur`` background)."""
    _, width = _face_polygon(face)
    return cv2.GaussianBlur(image, (0, 0), BLUR * width)


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to cover (w, h) and centre-cropped to it."""
    w, h = size
    s = max(w / image.shape[1], h / image.shape[0])
    big = cv2.resize(image, (max(w, round(image.shape[1] * s)), max(h, round(image.shape[0] * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0:y0 + h, x0:x0 + w]


class BackgroundReplacer:
    """Puts the person of every output frame over another background.

    Args:
        image: The source portrait (RGB uint8); output frames have its size.
        face: The source's tracked face (seeds the matte).
        background: RGB uint8 of the portrait's size.
        matte: The (H, W, 1) matte of another replacer of the same portrait and face (None: found
            here): a new plate for a running engine then costs no GrabCut.
    """

    def __init__(self, image: np.ndarray, face: FaceTrack, background: np.ndarray,
                 matte: np.ndarray | None = None) -> None:
        self.matte = person_matte(image, face)[..., None] if matte is None else matte
        self.background = background.astype(np.float32)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """``matte * frame + (1 - matte) * background`` (RGB uint8, the source's size)."""
        out = frame.astype(np.float32) * self.matte + self.background * (1.0 - self.matte)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
