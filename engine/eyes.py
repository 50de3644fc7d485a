"""Closed lids for the geometric reenactor: a warp only squeezes the open eye into a line."""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.geometry import affine_fit, box_around, soft_polygon
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


def paint_irises(out: np.ndarray, source: SourceFace, target: np.ndarray) -> None:
    """Move each iris to its target centre inside the eye opening, in place.

    The warp carries the eyeball with the lids only (iris points are not warp vertices), which
    leaves the source iris where the eye's own motion puts it. Each eye row is then resampled
    piecewise: the iris span is translated rigidly and the white on either side is stretched or
    compressed to fill up to the corners, so the sclera keeps its own texture and shading.

    Args:
        out: Reenacted crop (h, w, 3) uint8, modified in place.
        source: The prepared source.
        target: (N, 2+) target landmarks in crop pixels.
    """
    topo = source.topology
    src = source.landmarks
    h, w = out.shape[:2]
    for k in range(2):
        r_s = float(source.iris_radius[k])
        if r_s < 1.0:
            continue
        eye = topo.eyes[k]
        m = affine_fit(src[eye, :2], target[eye, :2])
        c_w = m[:, :2] @ src[topo.irises[k][0], :2] + m[:, 2]  # where the warp left the iris
        c_t = target[topo.irises[k][0], :2]
        if np.linalg.norm(c_t - c_w) < 0.3:
            continue
        r = r_s * float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        contour = target[eye, :2]
        x0, y0, x1, y1 = box_around(contour, 2, (w, h))
        lo, hi = float(contour[:, 0].min()), float(contour[:, 0].max())
        if x1 - x0 < 3 or y1 - y0 < 3 or hi - lo < 4 * r:
            continue
        # Keep the iris span inside the corners; a gaze past them is held at the corner.
        c_t = np.array([np.clip(c_t[0], lo + r + 1, hi - r - 1), c_t[1]])
        xs = np.arange(x0, x1, dtype=np.float64)
        map_x, weight = _iris_span_map(xs, lo, hi, c_w[0], c_t[0], r)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        map_y = ys - np.float32(c_t[1] - c_w[1]) * weight[None].astype(np.float32)
        map_x = np.broadcast_to(map_x.astype(np.float32)[None], map_y.shape).copy()
        moved = cv2.remap(out, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        opening = soft_polygon((y1 - y0, x1 - x0), contour, 0.5, offset=(x0, y0))[..., None]
        roi = out[y0:y1, x0:x1]
        roi[...] = np.clip(roi * (1.0 - opening) + moved * opening, 0, 255).astype(np.uint8)


def _iris_span_map(xs: np.ndarray, lo: float, hi: float, c_from: float, c_to: float,
                   r: float) -> tuple[np.ndarray, np.ndarray]:
    """Source x for each target x in an eye row, and the iris weight (1 on the iris, 0 at the
    corners) that carries the vertical gaze shift."""
    left = lo + (xs - lo) * (c_from - r - lo) / max(c_to - r - lo, 1e-3)
    right = hi - (hi - xs) * (hi - c_from - r) / max(hi - c_to - r, 1e-3)
    mid = xs - (c_to - c_from)
    src = np.where(xs < c_to - r, left, np.where(xs > c_to + r, right, mid))
    weight = np.where(xs < c_to - r, (xs - lo) / max(c_to - r - lo, 1e-3),
                      np.where(xs > c_to + r, (hi - xs) / max(hi - c_to - r, 1e-3), 1.0))
    return src, np.clip(weight, 0.0, 1.0)
