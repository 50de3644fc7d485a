"""The mouth as a viewer judges it (issue 20): how far it opens, and what is inside it.

Judged by dlib's 68 points (``geometry_judge``), an eye independent of the MediaPipe tracker that
drives the engine, on frames where the true mouth is open. Per frame, against the real frame:

- ``opening``: the output's inner-lip gap over the truth's (both in inter-ocular units);
- ``l1``: mean absolute difference (0..1) inside the true inner-lip polygon;
- ``colour``: distance between the mean Lab colours of the two interiors (Delta E 76);
- ``chroma_err``: the same over a/b only; ``chroma``: the output interior's mean a/b length
  (a black-and-white portrait's mouth must stay near 0);
- ``sharp``: Laplacian energy inside the interior, output over truth (blur cannot win).

Flicker (``mouth_runs``) compares the mean frame-to-frame change inside the interior, output
over truth, over the first ``FLICKER_FRAMES`` pairs of consecutive open frames. ``mp_gap`` is the
same gap on MediaPipe's mesh, for finding the stage (transformer, smoothing, warp, paint) where
an opening is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facepaint.engine.topology import get_topology

MOUTH_KEYS = ("opening", "l1", "colour", "chroma_err", "chroma", "sharp")
# A true mouth counts as open from this inner-lip gap (inter-ocular units; about a quarter of a
# wide vowel's) and an interior of at least this many pixels, so the polygon holds a cavity.
OPEN_GAP = 0.06
MIN_PIXELS = 40
# Frames of a flicker stretch.
FLICKER_FRAMES = 50


def dlib_gap(points: np.ndarray) -> float:
    """Inner-lip gap (68-point 62 to 66, mid-line) in inter-ocular units, eyes levelled."""
    from facepaint.plugins.trackers.blendshapes import face_frame

    q = face_frame(points)
    return float(q[66, 1] - q[62, 1])


def mp_gap(landmarks: np.ndarray) -> float:
    """Inner-lip gap of a MediaPipe mesh (points 13 to 14) over its outer eye-corner distance."""
    topo = get_topology("mediapipe478")
    p = np.asarray(landmarks, np.float64)[:, :2]
    iod = float(np.linalg.norm(p[topo.eye_corners[0][0]] - p[topo.eye_corners[1][0]])) + 1e-6
    return float(np.linalg.norm(p[14] - p[13]) / iod)


def interior_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: inside the inner-lip polygon (68-point 60..67), eroded one pixel so the
    lips' edge (where a one-pixel misplacement is all the error) is left out."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points)[60:68, :2]).astype(np.int32)], 1)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)


def lab_pixels(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, 3) float32 CIE Lab (L 0..100, a/b signed) of the masked pixels."""
    y, x = np.nonzero(mask)
    y0, y1, x0, x1 = y.min(), y.max() + 1, x.min(), x.max() + 1
    patch = rgb[y0:y1, x0:x1].astype(np.float32) / 255.0
    return cv2.cvtColor(patch, cv2.COLOR_RGB2LAB)[mask[y0:y1, x0:x1]]


def laplacian_energy(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image inside ``mask``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float((cv2.Laplacian(grey, cv2.CV_32F)[mask] ** 2).mean())


def frame_figures(out: np.ndarray, truth: np.ndarray, truth_points: np.ndarray,
                  out_points: np.ndarray | None) -> dict[str, float] | None:
    """``MOUTH_KEYS`` of one output frame against the real one, or None when the true mouth is
    not open (``OPEN_GAP``, ``MIN_PIXELS``). ``opening`` is NaN when dlib finds no output face."""
    gap = dlib_gap(truth_points)
    mask = interior_mask(truth_points, truth.shape[:2])
    if gap < OPEN_GAP or mask.sum() < MIN_PIXELS:
        return None
    lab_o, lab_t = lab_pixels(out, mask), lab_pixels(truth, mask)
    mean_o, mean_t = lab_o.mean(0), lab_t.mean(0)
    return {
        "opening": dlib_gap(out_points) / gap if out_points is not None else float("nan"),
        "l1": float(np.abs(out[mask].astype(np.float32) - truth[mask].astype(np.float32)).mean() / 255.0),
        "colour": float(np.linalg.norm(mean_o - mean_t)),
        "chroma_err": float(np.linalg.norm(mean_o[1:] - mean_t[1:])),
        "chroma": float(np.linalg.norm(lab_o[:, 1:], axis=1).mean()),
        "sharp": laplacian_energy(out, mask) / max(laplacian_energy(truth, mask), 1e-6),
    }


def clip_medians(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over a clip's open-mouth frames (NaNs left out)."""
    keys = rows[0].keys() if rows else ()
    out = {}
    for key in keys:
        values = np.array([row[key] for row in rows], np.float64)
        values = values[np.isfinite(values)]
        out[key] = float(np.median(values)) if len(values) else float("nan")
    return out


def warm(rgb: np.ndarray) -> np.ndarray:
    """A warm white balance: red x1.25, blue x0.7 (the protocol's warm camera)."""
    return np.clip(rgb.astype(np.float32) * np.array([1.25, 1.0, 0.7], np.float32), 0, 255).astype(np.uint8)


def greyscale(rgb: np.ndarray) -> np.ndarray:
    """The frame in greyscale, as three equal channels."""
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


DRIVERS = {"clean": lambda rgb: rgb, "warm": warm, "grey": greyscale}
