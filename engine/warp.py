"""Dense backward warps as (map_x, map_y) float32 arrays, consumable by ``cv2.remap``.

The piecewise-affine warp is rasterised on a coarse grid (one triangle id per cell, per-triangle
affines computed in one vectorised solve) and then upsampled: the per-pixel work is one resize and
one remap, so the same maps can feed ``torch.nn.functional.grid_sample`` once normalised.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (t, 3) of 2-D ``points``, dropping slivers of near-zero area."""
    tri = Delaunay(np.asarray(points[:, :2], np.float64)).simplices.astype(np.int32)
    p = points[:, :2]
    area = _signed_area(p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]])
    return tri[np.abs(area) > 1e-6]


def border_ring(width: int, height: int, per_side: int) -> np.ndarray:
    """Fixed points along the border of a (width, height) image, corners included, (k, 2)."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right]).astype(np.float32)


def _signed_area(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def triangle_affines(src: np.ndarray, dst: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Per-triangle affines (t, 2, 3) mapping ``dst`` triangle coordinates to ``src`` ones.

    Closed-form (Cramer) in one vectorised pass; degenerate target triangles get the translation
    of their first vertex (they cover no cell anyway).
    """
    p0, p1, p2 = dst[tri[:, 0]], dst[tri[:, 1]], dst[tri[:, 2]]
    q0, q1, q2 = src[tri[:, 0]], src[tri[:, 1]], src[tri[:, 2]]
    e1, e2 = p1 - p0, p2 - p0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # Linear part L = [f1 f2] @ inverse([e1 e2]) with f = source edge vectors.
    f1, f2 = q1 - q0, q2 - q0
    i00, i01, i10, i11 = e2[:, 1] * inv, -e2[:, 0] * inv, -e1[:, 1] * inv, e1[:, 0] * inv
    out = np.empty((len(tri), 2, 3))
    out[:, :, 0] = f1 * i00[:, None] + f2 * i10[:, None]
    out[:, :, 1] = f1 * i01[:, None] + f2 * i11[:, None]
    out[~ok, :, 0] = (1.0, 0.0)
    out[~ok, :, 1] = (0.0, 1.0)
    out[:, :, 2] = q0 - out[:, :, 0] * p0[:, :1] - out[:, :, 1] * p0[:, 1:]
    return out


class PiecewiseAffineWarp:
    """Backward map over a fixed triangulation, rasterised at ``1/step`` resolution.

    Args:
        triangles: (t, 3) vertex indices (fixed for a source).
        size: (width, height) of the image the maps address.
        step: Coarse grid spacing in pixels.
    """

    def __init__(self, triangles: np.ndarray, size: tuple[int, int], step: int) -> None:
        self.triangles = np.asarray(triangles, np.int32)
        self.size = size
        self.step = max(1, int(step))
        w, h = size
        self.coarse = (max(2, -(-w // self.step)), max(2, -(-h // self.step)))
        cw, ch = self.coarse
        # Coarse cell centres in full-resolution pixels, matching cv2.resize's half-pixel convention.
        fx, fy = w / cw, h / ch
        self._scale = np.array([fx, fy])
        gx = (np.arange(cw) + 0.5) * fx - 0.5
        gy = (np.arange(ch) + 0.5) * fy - 0.5
        self._gx, self._gy = np.meshgrid(gx.astype(np.float32), gy.astype(np.float32))
        self._ids = np.zeros((ch, cw), np.int32)
        self._full: tuple[np.ndarray, np.ndarray] | None = None

    def coarse_ids(self, dst: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        """Triangle id + 1 per coarse cell (0: no triangle), for target vertices ``dst``.

        Args:
            dst: (n, 2) target vertex positions.
            depth: Optional (n,) vertex depth, larger is farther. Triangles are painted far to
                near (a painter's z-buffer), so a turned head's near cheek covers its far edge
                instead of the two interleaving where the projected mesh folds.
        """
        ids = self._ids
        ids.fill(0)
        pts = (dst[:, :2] + 0.5) / self._scale - 0.5
        fixed = np.round(pts * 16).astype(np.int32)[self.triangles]
        p = pts[self.triangles]
        area = _signed_area(p[:, 0], p[:, 1], p[:, 2])
        # Folded (flipped) triangles are drawn first so that valid ones cover them; slivers are
        # skipped because fillConvexPoly would draw them as lines.
        keep = np.flatnonzero(np.abs(area) > 1e-4)
        if depth is not None:
            keep = keep[np.argsort(-depth[self.triangles[keep]].mean(1), kind="stable")]
        keep = keep[np.argsort(area[keep] > 0, kind="stable")]
        fill = cv2.fillConvexPoly
        for i, poly in zip((keep + 1).tolist(), fixed[keep], strict=True):
            fill(ids, poly, i, cv2.LINE_8, 4)
        return ids

    def maps(self, src: np.ndarray, dst: np.ndarray, full: bool = True,
             depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Backward maps: the source pixel each target pixel samples.

        Args:
            src: (n, 2) vertex positions in the source image.
            dst: (n, 2) vertex positions in the target image.
            full: Upsample to ``size``; otherwise return the coarse maps.
            depth: Optional (n,) target vertex depth (see ``coarse_ids``).

        Returns:
            (map_x, map_y) float32 arrays of shape (h, w) (or the coarse shape).
        """
        src = np.asarray(src[:, :2], np.float64)
        dst = np.asarray(dst[:, :2], np.float64)
        ids = self.coarse_ids(dst, depth)
        aff = triangle_affines(src, dst, self.triangles).astype(np.float32)
        ident = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
        aff = np.concatenate([ident[None], aff])  # id 0 (no triangle) maps to itself
        # One gather per affine coefficient (six flat tables): half the time of gathering the
        # (cells, 2, 3) block and reading it back strided.
        c = [np.take(col, ids) for col in aff.reshape(-1, 6).T.copy()]
        mx = c[0] * self._gx
        mx += c[1] * self._gy
        mx += c[2]
        my = c[3] * self._gx
        my += c[4] * self._gy
        my += c[5]
        if not full:
            return mx, my
        # Upsample the displacement, not the positions: cv2.resize clamps at the image border,
        # which would shift the fixed border by half a cell; the displacement there is ~0.
        w, h = size = self.size
        if self._full is None:
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._full = (gx, gy)
        cdx, cdy = mx - self._gx, my - self._gy
        # The outermost cells are pinned so the crop border is exactly still (seamless paste).
        for d in (cdx, cdy):
            d[0], d[-1], d[:, 0], d[:, -1] = 0.0, 0.0, 0.0, 0.0
        dx = cv2.resize(cdx, size, interpolation=cv2.INTER_LINEAR)
        dy = cv2.resize(cdy, size, interpolation=cv2.INTER_LINEAR)
        return cv2.add(dx, self._full[0]), cv2.add(dy, self._full[1])
