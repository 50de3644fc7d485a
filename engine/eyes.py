"""Closed lids for the geometric reenactor: a warp only squeezes the open eye into a line."""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.geometry import box_around, soft_polygon
from facepaint.engine.source_face import SourceFace


def paint_lids(out: np.ndarray, source: SourceFace, target: np.ndarray, closure: np.ndarray) -> None:
    """Cover each closing eye with the source's lid skin and a lash line, in place.

    Args:
        out: Reenacted crop (h, w, 3) uint8, modified in place.
        source: The prepared source.
        target: (N, 2+) target landmarks in crop pixels.
        closure: (2,) per eye, 0 open .. 1 shut.
    """
    topo = source.topology
    h, w = out.shape[:2]
    for k in range(2):
        c = float(closure[k])
        if c < 0.02:
            continue
        corners = target[topo.eye_corners[k], :2]
        width = float(np.linalg.norm(corners[0] - corners[1])) + 1.0
        lower = target[topo.lids[k][:, 1], :2]
        # Cover where the open eye was: the source's lid gap, scaled to the target eye, above the
        # closure line. The warp only squeezes the eyeball (sclera, catchlights) towards the line.
        src = source.landmarks
        s_c = src[topo.eye_corners[k], :2]
        scale = width / (float(np.linalg.norm(s_c[0] - s_c[1])) + 1.0)
        gap = (src[topo.lids[k][:, 0], :2] - src[topo.lids[k][:, 1], :2]) * scale
        upper = lower + 1.15 * gap - np.array([0.0, 0.02 * width])
        grown = np.concatenate([corners[:1], upper, corners[1:], (lower + [0.0, 0.03 * width])[::-1]])
        x0, y0, x1, y1 = box_around(grown, 0.15 * width + 2, (w, h))
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        shape = (y1 - y0, x1 - x0)
        skin = soft_polygon(shape, grown, 0.05 * width + 0.5, offset=(x0, y0))
        line = np.concatenate([corners[:1], lower, corners[1:]])
        lash = _polyline_mask(shape, line, offset=(x0, y0), thickness=max(1.0, 0.05 * width))
        roi = out[y0:y1, x0:x1].astype(np.float32)
        a = (c * skin)[..., None]
        roi = roi * (1 - a) + source.lid_colour[k] * a
        b = (c * c * lash)[..., None]
        roi = roi * (1 - b) + source.lash_colour[k] * b
        out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)


def _polyline_mask(shape, line: np.ndarray, offset, thickness: float) -> np.ndarray:
    """Soft float32 mask of an anti-aliased open polyline."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round((line - np.asarray(offset)) * 16).astype(np.int32)
    cv2.polylines(mask, [pts], False, 255, max(1, int(round(thickness))), cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.5 * thickness)
