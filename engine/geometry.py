"""Small array helpers shared by the geometric stages: similarity fits, openings, soft masks."""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.topology import Topology


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s * R @ src + t`` (Umeyama 1991), any dimension.

    Args:
        src: (n, d) points.
        dst: (n, d) corresponding points.
        scale: Fit the scale; otherwise ``s`` is 1.

    Returns:
        (s, R, t): scale, (d, d) rotation (no reflection), (d,) translation.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = (u * d) @ vt
    var = (a * a).sum() / len(src)
    s = float((sig * d).sum() / var) if scale and var > 0 else 1.0
    return s, rot, mu_d - s * rot @ mu_s


def similarity_apply(pts: np.ndarray, s: float, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Apply ``s * R @ p + t`` to each row of ``pts``."""
    return s * pts @ rot.T + t


def pair_gap(pts: np.ndarray, pairs: np.ndarray) -> float:
    """Mean distance between (upper, lower) index pairs, in the units of ``pts``."""
    if len(pairs) == 0:
        return 0.0
    return float(np.linalg.norm(pts[pairs[:, 0], :2] - pts[pairs[:, 1], :2], axis=1).mean())


def eye_openness(pts: np.ndarray, topo: Topology) -> np.ndarray:
    """Lid gap over eye width for each eye, (2,)."""
    out = np.zeros(2)
    for k in range(2):
        c = topo.eye_corners[k]
        width = np.linalg.norm(pts[c[0], :2] - pts[c[1], :2]) + 1e-6
        out[k] = pair_gap(pts, topo.lids[k]) / width
    return out


def mouth_openness(pts: np.ndarray, topo: Topology) -> float:
    """Inner-lip gap over inner mouth width."""
    c = topo.mouth_corners
    width = float(np.linalg.norm(pts[c[0], :2] - pts[c[1], :2])) + 1e-6
    return float(pair_gap(pts, topo.lip_pairs) / width)


def smoothstep(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray | float:
    """Hermite ramp from 0 at ``lo`` to 1 at ``hi`` (``lo > hi`` gives a falling ramp)."""
    u = np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 0.0, 1.0)
    out = u * u * (3.0 - 2.0 * u)
    return float(out) if np.ndim(out) == 0 else out


def soft_polygon(shape: tuple[int, int], poly: np.ndarray, blur: float, offset=(0.0, 0.0)) -> np.ndarray:
    """Feathered float32 mask in [0, 1] of a filled polygon.

    Args:
        shape: (h, w) of the mask.
        poly: (k, 2) polygon in pixels.
        blur: Gaussian sigma of the feather in pixels (0: hard edge).
        offset: (x, y) subtracted from ``poly`` first (to draw into a sub-window).
    """
    mask = np.zeros(shape, np.uint8)
    pts = np.round((poly[:, :2] - np.asarray(offset)) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift=4)
    out: np.ndarray = mask.astype(np.float32) * (1.0 / 255.0)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    return out


def box_around(pts: np.ndarray, pad: float, limit: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) around ``pts`` grown by ``pad`` pixels, clipped to (w, h)."""
    x0, y0 = np.floor(pts[:, :2].min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts[:, :2].max(0) + pad).astype(int) + 1
    w, h = limit
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def affine_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares (2, 3) affine with ``dst ≈ m @ [src, 1]`` (a new, writable array)."""
    a = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return sol.T.copy()


def scale_rotation(rot: np.ndarray, gain: float) -> np.ndarray:
    """Rotation by ``gain`` times the angle of ``rot`` about the same axis (Rodrigues)."""
    angle = np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-8:
        return np.eye(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]]) / (2 * np.sin(angle))
    a = gain * angle
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def placed_over(shape: np.ndarray, target: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``shape`` scaled and translated onto ``target``'s points ``idx``; not rotated, so the rotation
    between the driving face and this neutral stays measurable (the driving pose relative to the source's)."""
    a, b = shape[idx], target[idx]
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    scale = np.sqrt(((b - cb) ** 2).sum() / max(((a - ca) ** 2).sum(), 1e-9))
    return (shape - ca) * scale + cb


def after_linear(unpose: np.ndarray, centre: np.ndarray, pose):
    """``pose`` applied after ``unpose`` (a linear map about ``centre``)."""

    def composed(pts: np.ndarray) -> np.ndarray:
        return pose(centre + (pts - centre) @ unpose.T)

    return composed
