"""How far the mouth net's fill moves when the driving camera is warm or greyscale, with the
driver's landmarks held fixed, so that only the net's input (the driver's luminance layout) changes
and not the tracking (issue 20: the warm / grey interior ratios).

    python bench/mouth_tint.py [--clips dt_M030_front_happy_level3_001.mp4 hgan_driving.mp4 ...]

Per validate clip: its first frame as the portrait (``--reference`` first), the 12 frames with the
widest driving mouth; each rendered with ``mouth_fill = "neural"`` from the clean, the warm (R x1.25,
B x0.7) and the greyscale frame, all with the clean frame's landmarks. Printed: the mean absolute
difference (levels, 0-255) inside the target's inner lips of warm and grey against clean, and of the
clean fill against the shipped layout's clean fill, for three layouts: the shipped one
(``mouth_net.square_layout``: each channel over the lips' median of that channel, weighted by a
typical lips colour, then the luma), the luma one the net was trained on (each pixel's luma over the
lips' median luma: moves with a white balance) and a balanced one (each channel over the lips'
median, then the luma, with no lips colour: cancels a white balance but is far from what the net
was trained on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "validate"
CLIPS = ("dt_M030_front_happy_level3_001.mp4", "hgan_driving.mp4", "lia_vox_driving1.mp4",
         "mtrk_wojtek_video.mp4", "vx_tys.mp4")
FRAMES = 12


def _layout(weights_of: Any):
    """A ``mouth_net.square_layout`` whose per-pixel weights are ``weights_of(lips median RGB)``."""
    from facepaint.engine.neural import mouth_net as mn

    def layout(square: np.ndarray, inner: np.ndarray, outer: np.ndarray, target_inner: np.ndarray) -> np.ndarray:
        size = square.shape[0]
        ring = mn.lips_ring(outer, inner, size)
        rgb = square.astype(np.float32)
        ref = np.median(rgb[ring], 0) if ring.sum() >= 8 else rgb.reshape(-1, 3).mean(0)
        fit = mn.affine_fit(target_inner, inner)
        fitted = cv2.warpAffine(rgb @ weights_of(np.maximum(ref, 8.0)).astype(np.float32), fit, (size, size),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        return cv2.GaussianBlur(fitted, (0, 0), mn.LAYOUT_BLUR * size)

    return layout


def layouts() -> dict[str, Any]:
    """The shipped layout and the two it is compared with (see the module notes)."""
    from facepaint.engine.neural import mouth_net as mn

    return {"shipped": mn.square_layout,
            "luma": _layout(lambda ref: mn.LUMA / float(mn.LUMA @ ref)),
            "balanced": _layout(lambda ref: mn.LUMA / ref)}


def clip_moves(engine: Any, clip: Any) -> tuple[float, float, list[np.ndarray]]:
    """Mean |warm - clean| and |grey - clean| inside the target inner lips over the widest mouths."""
    from facepaint.engine.geometry import mouth_openness
    from facepaint.runtime.evaluation.mouth import DRIVERS

    topo = engine.source.topology
    tracked = [i for i in range(len(clip.images)) if clip.face(i) is not None]
    opening = [mouth_openness(np.asarray(clip.face(i).landmarks), topo) for i in tracked]
    moves: dict[str, list[float]] = {"warm": [], "grey": []}
    cleans = []
    for k in np.argsort(opening)[::-1][:FRAMES]:
        face = clip.face(tracked[k])
        target = engine.transformer.transform(face)
        outs = {}
        for name, tint in DRIVERS.items():
            out = engine.reenactor.warp(target).image
            engine.reenactor.paint(out, target, tint(clip.images[tracked[k]]), np.asarray(face.landmarks))
            outs[name] = out.astype(np.float32)
        inside = np.zeros(outs["clean"].shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.round(target.landmarks[topo.lips_inner, :2]).astype(np.int32)], 1)
        if inside.sum() >= 10:
            cleans.append(outs["clean"][inside > 0])
            for name in moves:
                moves[name].append(float(np.abs(outs[name] - outs["clean"])[inside > 0].mean()))
    return float(np.mean(moves["warm"])), float(np.mean(moves["grey"])), cleans


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", nargs="+", default=list(CLIPS), help="validate clips (file names)")
    args = p.parse_args()
    from facepaint.engine.face_reenactor import ReenactorConfig
    from facepaint.engine.neural import mouth_net
    from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
    from facepaint.runtime.evaluation.mouth_frames import read_clip

    shipped = mouth_net.square_layout
    config = EngineConfig(reenactor=ReenactorConfig(mouth_fill="neural"))
    print(f"{'clip':36s} {'layout':9s} |warm - clean| |grey - clean| |clean - shipped's clean|")
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for name in args.clips:
            clip = read_clip(str(MEDIA / name), tracker, 150)
            with ReenactmentEngine(config, clip.images[0], clip.face(0)) as engine:
                engine.calibrate(clip.face(clip.neutral()))
                base = None
                for label, layout in layouts().items():
                    mouth_net.square_layout = layout  # driver_layout reads it from the module
                    try:
                        warm, grey, cleans = clip_moves(engine, clip)
                    finally:
                        mouth_net.square_layout = shipped
                    base = cleans if base is None else base
                    moved = np.mean([np.abs(a - b).mean() for a, b in zip(cleans, base, strict=True)])
                    print(f"{name:36s} {label:9s} {warm:13.2f} {grey:13.2f} {moved:13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
