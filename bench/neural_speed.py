"""Per-part milliseconds of the neural reenactor on this machine (median of N renders).

    python bench/neural_speed.py [--weights DIR] [--threads 1] [--n 30]

Source: the Obama portrait (910x1137); targets: lp_d10 frames. Prints the generator forward, the
inputs (coarse warp + heatmaps), the whole neural stage and the geometric stage for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facepaint.engine.neural.align import apply_affine
from facepaint.engine.neural.inputs import heatmaps, to_tensor_layout
from facepaint.plugins.sources.image import read_image
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.self_reenact import engines

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    image = read_image(str(MEDIA / "portraits" / "obama.jpg"), "portrait")
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        built = engines(image, tracker.track(image, None)[0], args.weights)
        tracker.reset()
        with VideoSource(MEDIA / "driving" / "lp_d10.mp4") as video:
            faces = [tracker.track(f.image, int(f.pts * 1000)) for f, _ in zip(video, range(40), strict=False)]
    geo, neu = built["geometric"], built["neural"]
    targets = [geo.transformer.transform(f[0]) for f in faces if f]
    stage = neu.reenactor
    lm = apply_affine(stage.matrix, targets[-1].landmarks)
    coarse = stage._coarse.render(lm)
    x = torch.from_numpy(to_tensor_layout(stage.square, coarse, heatmaps(lm, stage.size))[None])
    it = iter(range(10**9))

    def pick():
        return targets[next(it) % len(targets)]

    backend = stage.chosen.backend
    rows = {
        f"generator forward (128 px, {stage.chosen.name})": median_ms(lambda: backend.infer({"x": x}), args.n),
        "coarse warp + heatmaps (128 px)": median_ms(
            lambda: (stage._coarse.render(lm), heatmaps(lm, stage.size)), args.n),
    }
    rows["neural reenactor stage (whole)"] = median_ms(lambda: stage.render(pick(), None, None), args.n)
    rows["geometric reenactor stage"] = median_ms(lambda: geo.reenactor.render(pick(), None, None), args.n)
    print(f"torch threads {args.threads}; source crop {stage.source.crop.shape[1]}x{stage.source.crop.shape[0]}")
    for name, ms in rows.items():
        print(f"  {name:34s} {ms:7.1f} ms")
    for eng in built.values():
        eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
