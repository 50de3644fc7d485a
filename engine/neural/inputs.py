"""What the coarse-to-fine generator is fed, built the same way in training and at inference.

Input tensor (``IN_CHANNELS`` = 13 channels at the crop size, values in [-1, 1] or [0, 1]):
the source crop (RGB, 3), the coarse estimate (the source warped to the target landmarks by the
project's piecewise-affine warp, RGB, 3) and one Gaussian heatmap per landmark region of the
target (``REGIONS``, 7): contours drawn as lines and blurred, irises as discs.
"""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.topology import (
    MESH_FACE_OVAL,
    MESH_LEFT_BROW,
    MESH_LEFT_EYE,
    MESH_LEFT_IRIS,
    MESH_LIPS_INNER,
    MESH_LIPS_OUTER,
    MESH_NOSE,
    MESH_RIGHT_BROW,
    MESH_RIGHT_EYE,
    MESH_RIGHT_IRIS,
    get_topology,
)
from facepaint.engine.warp import PiecewiseAffineWarp, border_ring, triangulate

# Region -> (polylines, closed). Each region is one heatmap channel.
REGIONS: tuple[tuple[str, tuple[tuple[int, ...], ...], bool], ...] = (
    ("contour", (MESH_FACE_OVAL,), True),
    ("brows", (MESH_RIGHT_BROW[:5], MESH_RIGHT_BROW[5:], MESH_LEFT_BROW[:5], MESH_LEFT_BROW[5:]), False),
    ("eyes", (MESH_RIGHT_EYE, MESH_LEFT_EYE), True),
    ("nose", (MESH_NOSE[:8], MESH_NOSE[8:]), False),
    ("lips_outer", (MESH_LIPS_OUTER,), True),
    ("lips_inner", (MESH_LIPS_INNER,), True),
    ("irises", (MESH_RIGHT_IRIS[1:], MESH_LEFT_IRIS[1:]), True),
)
IN_CHANNELS = 6 + len(REGIONS)
HEAD_RING = 1.3  # the head ring (oval grown about its centre) moves with the face
RING_POINTS = 6  # fixed points per side of the crop border


def heatmaps(landmarks: np.ndarray, size: int, sigma: float = 1.2) -> np.ndarray:
    """(len(REGIONS), size, size) float32 in [0, 1]: each region's lines, blurred.

    Args:
        landmarks: (478, 2+) target landmarks in crop pixels.
        size: Crop side.
        sigma: Gaussian blur in pixels.
    """
    pts = np.round(np.asarray(landmarks)[:, :2] * 4).astype(np.int32)  # 2 fractional bits for cv2's shift
    out = np.zeros((len(REGIONS), size, size), np.float32)
    canvas = np.zeros((size, size), np.uint8)
    for k, (_, lines, closed) in enumerate(REGIONS):
        canvas.fill(0)
        cv2.polylines(canvas, [pts[list(line)] for line in lines], closed, 255, 1, cv2.LINE_AA, 2)
        blurred = cv2.GaussianBlur(canvas, (0, 0), sigma).astype(np.float32)
        out[k] = blurred / max(float(blurred.max()), 1.0)
    return out


class CoarseWarp:
    """The source crop warped to target landmarks (the coarse estimate), for one source.

    Args:
        source: (size, size, 3) uint8 RGB source crop.
        landmarks: (478, 3) source landmarks in crop pixels.
        step: Coarse raster spacing of the warp, in pixels.
    """

    def __init__(self, source: np.ndarray, landmarks: np.ndarray, step: int = 2) -> None:
        self.topology = get_topology("mediapipe478")
        self.source = source
        size = source.shape[0]
        self.size = size
        self._ring = border_ring(size, size, RING_POINTS).astype(np.float64)
        self._src = self._vertices(np.asarray(landmarks, np.float64))
        self.warp = PiecewiseAffineWarp(triangulate(self._src), (size, size), step)

    def _vertices(self, lm: np.ndarray) -> np.ndarray:
        oval = lm[self.topology.oval, :2]
        centre = oval.mean(0)
        head = np.clip(centre + HEAD_RING * (oval - centre), 3, self.size - 4)
        return np.concatenate([lm[self.topology.warp, :2], head, self._ring])

    def render(self, landmarks: np.ndarray) -> np.ndarray:
        """The source warped so that its landmarks land on ``landmarks`` ((478, 3) crop pixels)."""
        mx, my = self.maps(landmarks)
        return cv2.remap(self.source, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def maps(self, landmarks: np.ndarray, full: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The backward maps (map_x, map_y) of ``render`` (float32, crop size), or with ``full``
        False the warp's cell maps (what ``device_ops.MapUpsampler`` finishes on a device)."""
        lm = np.asarray(landmarks, np.float64)
        dst = self._vertices(lm)
        oval_z = lm[self.topology.oval, 2]
        far = np.full(len(self._ring), lm[:, 2].max() + self.size)
        depth = np.concatenate([lm[self.topology.warp, 2], oval_z, far])
        return self.warp.maps(self._src, dst, full=full, depth=depth)


def to_tensor_layout(source: np.ndarray, coarse: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """(IN_CHANNELS, size, size) float32: source and coarse in [-1, 1], then the heatmaps."""
    src = source.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    crs = coarse.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return np.concatenate([src, crs, heat])
