"""How far the mouth net's fill moves when the driving camera is warm or greyscale, with the
driver's landmarks held fixed, so that only the net's input (the driver's luminance layout) changes
and not the tracking (issue 20: the warm / grey interior ratios).

    python bench/mouth_tint.py [--clips dt_M030_front_happy_level3_001.mp4 hgan_driving.mp4 ...]

Per validate clip: its first frame as the portrait (``--reference`` first), the 12 frames with the
widest driving mouth; each rendered with ``mouth_fill = "neural"`` from the clean, the warm (R x1.25,
B x0.7) and the greyscale frame, all with the clean frame's landmarks. Printed: the mean absolute
difference (levels, 0-255) inside the target's inner lips of warm and grey against clean, and of the
clean fill against the shipped layout's clean fill, for three layouts: the shipped one
(``mouth_net.layout_weights``: each channel over the lips' median of that channel, weighted by a
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


def layouts() -> dict[str, Any]:
    """``mouth_net.layout_weights`` of the shipped layout and of the two it is compared with (see the
    module notes): each maps the lips' median RGB to the channels' weights."""
    from facepaint.engine.neural import mouth_net as mn

    def luma(lips: np.ndarray) -> np.ndarray:
        return (mn.LUMA / float(mn.LUMA @ np.maximum(lips, 8.0))).astype(np.float32)

    def balanced(lips: np.ndarray) -> np.ndarray:
        return (mn.LUMA / np.maximum(lips, 8.0)).astype(np.float32)

    return {"shipped": mn.layout_weights, "luma": luma, "balanced": balanced}


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

    shipped = mouth_net.layout_weights
    config = EngineConfig(reenactor=ReenactorConfig(mouth_fill="neural"))
    print(f"{'clip':36s} {'layout':9s} |warm - clean| |grey - clean| |clean - shipped's clean|")
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for name in args.clips:
            clip = read_clip(str(MEDIA / name), tracker, 150)
            with ReenactmentEngine(config, clip.images[0], clip.face(0)) as engine:
                engine.calibrate(clip.face(clip.neutral()))
                base = None
                for label, weights in layouts().items():
                    mouth_net.layout_weights = weights  # square_layout reads it from the module
                    try:
                        warm, grey, cleans = clip_moves(engine, clip)
                    finally:
                        mouth_net.layout_weights = shipped
                    base = cleans if base is None else base
                    moved = np.mean([np.abs(a - b).mean() for a, b in zip(cleans, base, strict=True)])
                    print(f"{name:36s} {label:9s} {warm:13.2f} {grey:13.2f} {moved:13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
