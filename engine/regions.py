"""Face regions of the driving motion (``--regions eyes,brows,mouth,pose``): which landmarks follow.

Each landmark belongs softly to the region whose points are nearest (Gaussian in face widths), so
a region's edge fades out over the skin instead of tearing the warp where two regions meet.
"""

from __future__ import annotations

import numpy as np

from facepaint.engine.topology import Topology

REGIONS = ("eyes", "brows", "mouth", "pose")
# Width of the fade between regions, in face widths: about the gap between a brow and its eye.
REGION_SIGMA = 0.08


def region_points(topology: Topology) -> dict[str, np.ndarray]:
    """Landmark indices that define each expression region (``pose`` has none: it is the head)."""
    eyes = np.concatenate([*topology.eyes, *topology.irises])
    mouth = np.concatenate([topology.lips_outer, topology.lips_inner])
    return {"eyes": eyes, "brows": np.concatenate(topology.brows), "mouth": mouth}


def region_weights(landmarks: np.ndarray, topology: Topology, regions: tuple[str, ...]
                   ) -> tuple[np.ndarray, bool, bool] | None:
    """Per-landmark share of the driving expression that ``regions`` keep.

    Args:
        landmarks: (N, 2+) the source's landmarks (crop pixels).
        topology: Their layout.
        regions: Selected subset of ``REGIONS``.

    Returns:
        None when every region is selected (nothing to mask); otherwise (N,) weights in [0, 1],
        whether the eyes' opening (blinks) follows, and whether the head pose follows.
    """
    if set(regions) >= set(REGIONS):
        return None
    pts = np.asarray(landmarks, np.float64)[:, :2]
    width = float(np.ptp(pts[:, 0])) + 1e-6
    near = {}
    for name, idx in region_points(topology).items():
        d = np.sqrt(((pts[:, None, :] - pts[None, idx, :]) ** 2).sum(-1)).min(axis=1) / width
        # The jaw and chin below the mouth move with it however far they are from the lips.
        if name == "mouth":
            below = pts[:, 1] > pts[idx, 1].mean()
            d = np.where(below, np.minimum(d, 0.5 * d), d)
        near[name] = np.exp(-0.5 * (d / REGION_SIGMA) ** 2) + 1e-9
    total = sum(near.values())
    weights = sum((near[r] for r in regions if r in near), np.zeros(len(pts))) / total
    return weights, "eyes" in regions, "pose" in regions
