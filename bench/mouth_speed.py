"""Milliseconds of the mouth fill per frame: the paint (portrait colours) and the mouth net
(``mouth_fill = "neural"``: the whole fill, and the net's forward pass alone) (issue 20's speed figure).

    python bench/mouth_speed.py [--portrait lp_s42] [--calls 200]

The portrait driven to lp_d10.mp4's widest mouth (the paint at full opening: the dearest case);
each fill timed alone on a warped crop (median and 90th percentile of ``--calls`` calls,
alternating them so the shared machine's load falls on all alike), torch on one thread; then the
process's CPU time per call over ``--calls`` calls of each in a row (all threads: a backend's pool
counts). The net runs
with each backend it can (torch; onnxruntime where the onnx extra is installed, its file exported
into the user cache on first use, as a render does).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from facepaint.compile.first_use import compile_on_first_use
from facepaint.engine.face_reenactor import ReenactorConfig
from facepaint.engine.mouth import mouth_alpha, paint_mouth
from facepaint.engine.mouth_colour import lip_colour
from facepaint.engine.mouth_neural import NeuralMouth
from facepaint.engine.neural.model_files import mouth_backend
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.stages import ModelConfig
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.mouth_frames import read_clip

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--portrait", default="lp_s42")
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    image = cv2.cvtColor(cv2.imread(str(MEDIA / "portraits" / f"{args.portrait}.jpg")), cv2.COLOR_BGR2RGB)
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        face = tracker.track(image, None)[0]
        clip = read_clip(str(MEDIA / "driving" / "lp_d10.mp4"), tracker, 150)
    index = clip.widest_mouth()
    with ReenactmentEngine(EngineConfig(), image, face) as engine:
        engine.calibrate(clip.face(clip.neutral()))
        target = engine.transformer.transform(clip.face(index))
        warped = engine.reenactor.warp(target).image
        source, lm = engine.source, target.landmarks
        opened, closing = mouth_alpha(source, lm)
        start = time.perf_counter()
        palette = lip_colour(source.crop, source.landmarks, source.topology)
        prepare_ms = 1000 * (time.perf_counter() - start)
        frame, driving = clip.images[index], np.asarray(clip.face(index).landmarks)
        nets = {name: NeuralMouth(source, ModelConfig(backend=name), palette) for name in backends()}
        x, _ = nets["torch"].inputs(warped, lm, frame, driving)
        fills = {"paint": lambda out: paint_mouth(out, source, lm, frame, driving, opened, closing, palette)}
        for name, net in nets.items():
            fills[f"neural {name}"] = lambda out, n=net: n.paint(out, lm, frame, driving)
            fills[f"forward {name}"] = lambda out, n=net: n.chosen.backend.infer({"x": x})
        times: dict[str, list[float]] = {name: [] for name in fills}
        for _ in range(args.calls):
            for name, fill in fills.items():
                out = warped.copy()
                start = time.perf_counter()
                fill(out)
                times[name].append(1000 * (time.perf_counter() - start))
        cpu = {name: _process_cpu(fill, warped, args.calls) for name, fill in fills.items()}
        for net in nets.values():
            net.close()
    print(f"{args.portrait} x lp_d10 frame {index}, crop {warped.shape[1]}x{warped.shape[0]}, opening {opened:.2f}; "
          f"portrait palette at prepare time {prepare_ms:.2f} ms")
    for name, values in times.items():
        p50, p90 = np.median(values), np.percentile(values, 90)
        print(f"  {name:20s} p50 {p50:.3f} ms  p90 {p90:.3f} ms  process CPU {cpu[name]:.3f} ms a call")
    return 0


def _process_cpu(fill: object, warped: np.ndarray, calls: int) -> float:
    """The process's CPU time per call over ``calls`` calls of ``fill`` in a row, every thread
    included: what a backend's worker threads burn around a call (spinning) counts too."""
    start = time.process_time()
    for _ in range(calls):
        fill(warped.copy())  # type: ignore[operator]
    return 1000 * (time.process_time() - start) / calls


def backends() -> tuple[str, ...]:
    """torch, and onnxruntime where it runs here (its ONNX built into the cache as a render would)."""
    if mouth_backend("auto") != "onnxruntime":
        return ("torch",)
    compile_on_first_use(EngineConfig(reenactor=ReenactorConfig(mouth_fill="neural"),
                                      model=ModelConfig(backend="onnxruntime")))
    return ("torch", "onnxruntime")


if __name__ == "__main__":
    sys.exit(main())
