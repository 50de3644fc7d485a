"""Face- and mouth-region pixel figures of a self-reenactment frame against the real one.

Where a warp and a generator differ is the face and, above all, the mouth; a whole-frame L1 hides
it under the background. The face region is the real frame's face-oval hull (L1) or its bounding
box (PSNR, SSIM); the mouth region is the box ``source_face.mouth_region`` puts around the real
lips. ``eval --self`` reports them (``image.face_l1``...); ``bench/neural_eval.py`` compares the
reenactors with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facepaint.engine.source_face import mouth_region
from facepaint.engine.topology import get_topology
from facepaint.runtime.evaluation.metrics import finite, l1, psnr, ssim

REGION_KEYS = ("face_l1", "mouth_l1", "face_psnr", "mouth_psnr", "face_ssim", "mouth_ssim")


def face_hull(landmarks: np.ndarray) -> np.ndarray:
    """(k, 2) float32 convex hull of the face oval of a 478-point mesh (pixels)."""
    oval = get_topology("mediapipe478").oval
    return cv2.convexHull(np.asarray(landmarks)[oval, :2].astype(np.float32))[:, 0]


def hull_mask(hull: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: the pixels inside ``hull`` (the face region of the L1 figures)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(hull).astype(np.int32)], 1)
    return mask.astype(bool)


def region_scores(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray, with_ssim: bool = True) -> dict[str, float]:
    """``REGION_KEYS`` of one output frame against the real one (``landmarks``: the real frame's
    478-point mesh in its pixels); the SSIM keys only ``with_ssim`` (slow)."""
    topo = get_topology("mediapipe478")
    h, w = real.shape[:2]
    hull = face_hull(landmarks)
    sel = hull_mask(hull, (h, w))
    x0, y0 = np.maximum(np.floor(hull.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hull.max(0)).astype(int), (w, h))
    m = mouth_region(np.asarray(landmarks), topo)
    mx0, my0, mx1, my1 = max(m[0], 0), max(m[1], 0), min(m[2], w), min(m[3], h)
    face_o, face_r = out[y0:y1, x0:x1], real[y0:y1, x0:x1]
    mouth_o, mouth_r = out[my0:my1, mx0:mx1], real[my0:my1, mx0:mx1]
    scores = {"face_l1": l1(out[sel], real[sel]), "mouth_l1": l1(mouth_o, mouth_r),
              "face_psnr": psnr(face_o, face_r), "mouth_psnr": psnr(mouth_o, mouth_r)}
    if with_ssim:
        scores.update(face_ssim=ssim(face_o, face_r), mouth_ssim=ssim(mouth_o, mouth_r))
    return scores


def region_means(rows: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Mean of each ``REGION_KEYS`` figure over the frames that have it (None: none has)."""
    means: dict[str, float | None] = {}
    for key in REGION_KEYS:
        values = [row[key] for row in rows if key in row]
        means[key] = finite(float(np.mean(values))) if values else None
    return means
