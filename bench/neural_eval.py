"""Self-reenactment on the held-out clips: geometric vs neural reenactor, same run, same tracks.

    python bench/neural_eval.py                         # shipped weights, every validate/ clip
    python bench/neural_eval.py --weights /work/runs/gen --clips 8 --json /tmp/val.json

Prints per-clip and mean face/mouth L1, PSNR, SSIM and the neural/geometric L1 ratios (issue 10
targets: face <= 0.75, mouth <= 0.7). Clips come from ../shared/media/validate (never trained on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.self_reenact import KEYS, self_reenact
from facepaint.runtime.training.cache import clip_files

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "validate"))
    p.add_argument("--weights", help="a train output folder (default: the shipped weights)")
    p.add_argument("--clips", type=int, help="only the first N clips")
    p.add_argument("--every", type=int, default=3, help="judge every N-th frame")
    p.add_argument("--max-frames", type=int, default=90, help="frames per clip")
    p.add_argument("--json", help="write the per-clip figures here")
    args = p.parse_args()
    clips = clip_files(Path(args.media))[: args.clips]
    rows = {}
    print(f"{'clip':40s} {'n':>3s}  face L1 geo/neu   mouth L1 geo/neu  face PSNR geo/neu  face SSIM geo/neu")
    for clip in clips:
        with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
            r = self_reenact(clip, tracker, args.weights, args.every, args.max_frames)
        rows[clip.stem] = r
        if not r["frames"]:
            print(f"{clip.stem:40s}   0  (no face in the first frames)", flush=True)
            continue
        g, n = r["geometric"], r["neural"]
        print(f"{clip.stem:40s} {r['frames']:3d}  {g['face_l1']:.4f}/{n['face_l1']:.4f}   {g['mouth_l1']:.4f}/"
              f"{n['mouth_l1']:.4f}   {g['face_psnr']:5.2f}/{n['face_psnr']:5.2f}    {g['face_ssim']:.3f}/"
              f"{n['face_ssim']:.3f}", flush=True)
    judged = [r for r in rows.values() if r["frames"]]
    mean = {e: {k: float(np.mean([r[e][k] for r in judged])) for k in KEYS} for e in ("geometric", "neural")}
    for e in ("geometric", "neural"):
        print(f"mean {e:10s} " + "  ".join(f"{k} {v:.4f}" for k, v in mean[e].items()))
    ratio = {k: mean["neural"][k] / mean["geometric"][k] for k in ("face_l1", "mouth_l1", "frame_l1")}
    print(f"neural/geometric L1: face {ratio['face_l1']:.3f} (target <= 0.75), mouth {ratio['mouth_l1']:.3f} "
          f"(target <= 0.70), frame {ratio['frame_l1']:.3f}; {len(judged)} clips")
    if args.json:
        Path(args.json).write_text(json.dumps({"clips": rows, "mean": mean, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
