"""Self-supervised training pairs from the cache: source and driving frames of one clip.

The driving frame's landmarks are the target; the driving frame itself is the ground truth.
Segmentation targets are made without a face parser: face = the hull of the face oval; hair = a
band around the top and sides of the oval (the oval grown 1.25x about its centre, shifted up by
an eighth of the face height, above the mouth corners), minus the face; background = the rest. It is
a heuristic (hats, bald heads and long hair are mislabelled); it is what the mask head learns.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.engine.neural.inputs import CoarseWarp, heatmaps, to_tensor_layout
from facepaint.engine.topology import MESH_FACE_OVAL, MESH_LEFT_EYE, MESH_LIPS_OUTER, MESH_RIGHT_EYE
from facepaint.runtime.training.cache import CachedClip

_MOUTH_CORNERS = (61, 291)


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch as numpy arrays (the trainer moves them to torch).

    Attributes:
        inputs: (B, IN_CHANNELS, S, S) float32 generator inputs.
        target: (B, 3, S, S) float32 driving crops in [-1, 1].
        seg: (B, S, S) int64 segmentation targets (0 background, 1 face, 2 hair).
        weight: (B, 1, S, S) float32 L1 weights (mouth and eyes weighted up).
    """

    inputs: np.ndarray
    target: np.ndarray
    seg: np.ndarray
    weight: np.ndarray


def seg_target(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 labels from landmarks alone (see the module docstring)."""
    lm = np.asarray(landmarks)[:, :2]
    oval = lm[list(MESH_FACE_OVAL)]
    label = np.zeros((size, size), np.uint8)
    centre = oval.mean(0)
    height = np.ptp(oval[:, 1])
    band = centre + 1.25 * (oval - centre) - np.array([0.0, 0.12 * height])
    cv2.fillPoly(label, [np.round(band).astype(np.int32)], 2)
    cut = int(round(lm[list(_MOUTH_CORNERS), 1].mean()))
    below = label[max(cut, 0):]
    below[below == 2] = 0
    cv2.fillPoly(label, [np.round(cv2.convexHull(oval.astype(np.float32))[:, 0]).astype(np.int32)], 1)
    return label


def weight_map(landmarks: np.ndarray, size: int, gain: float) -> np.ndarray:
    """(size, size) float32: 1 everywhere, ``1 + gain`` on the mouth and eyes (grown a little)."""
    lm = np.asarray(landmarks)[:, :2]
    w = np.zeros((size, size), np.uint8)
    for region in (MESH_LIPS_OUTER, MESH_RIGHT_EYE, MESH_LEFT_EYE):
        pts = lm[list(region)]
        centre = pts.mean(0)
        cv2.fillPoly(w, [np.round(centre + 1.3 * (pts - centre)).astype(np.int32)], 1)
    return 1.0 + gain * w.astype(np.float32)


class PairSampler:
    """Random (source, driving) pairs, one clip per pair, clips drawn uniformly.

    Args:
        clips: Cached clips (at least 2 frames each).
        region_gain: Extra L1 weight on mouth and eyes.
    """

    def __init__(self, clips: list[CachedClip], region_gain: float = 3.0) -> None:
        self.clips = clips
        self.region_gain = region_gain

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        """``batch`` random pairs drawn from ``rng``."""
        picks = []
        for _ in range(batch):
            clip = self.clips[int(rng.integers(len(self.clips)))]
            s, d = (int(v) for v in rng.integers(len(clip.crops), size=2))
            picks.append((clip, s, d))
        return make_batch(picks, self.region_gain)


def make_batch(picks: list[tuple[CachedClip, int, int]], region_gain: float = 3.0) -> Batch:
    """The batch of the (clip, source index, driving index) triples given."""
    inputs, target, seg, weight = [], [], [], []
    for clip, s, d in picks:
        size = clip.crops.shape[1]
        lm_d = clip.landmarks[d]
        coarse = CoarseWarp(clip.crops[s], clip.landmarks[s]).render(lm_d)
        inputs.append(to_tensor_layout(clip.crops[s], coarse, heatmaps(lm_d, size)))
        target.append(clip.crops[d].astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
        seg.append(seg_target(lm_d, size))
        weight.append(weight_map(lm_d, size, region_gain)[None])
    return Batch(np.stack(inputs), np.stack(target), np.stack(seg).astype(np.int64), np.stack(weight))
