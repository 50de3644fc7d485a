"""Per-step milliseconds of the neural reenactor's numpy/cv2 path against its torch device path.

    python bench/device_path.py [--device cpu|cuda] [--threads 1] [--n 30] [--weights DIR]
    python bench/device_path.py --fit      # the heatmap line width against cv2 (device_ops.LINE_HALF_WIDTH)

Source: the Obama portrait (910x1137); targets: lp_d10 frames. Medians over N renders, cycling the
targets. The host maps (piecewise-affine warps) are the same for both paths and timed once. On
CUDA the generator runs in fp16, the torch steps are synchronised before each clock read, and the
whole step is also timed replayed as a CUDA graph.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from facepaint.engine.neural import device_ops
from facepaint.engine.neural.align import apply_affine
from facepaint.engine.neural.device_ops import GraphedModule
from facepaint.engine.neural.device_path import DeviceReenactorPath, PinnedRing
from facepaint.engine.neural.inputs import heatmaps, to_tensor_layout
from facepaint.engine.neural.model_files import GENERATOR, open_stage_model
from facepaint.engine.stages import ModelConfig
from facepaint.plugins.sources.image import read_image
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.self_reenact import engines

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
INVERSE = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


def median_ms(fn: Callable[[int], object], n: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``fn(i)`` for i in 0..n-1, synchronising the device around each."""
    fn(0)
    times = []
    for i in range(n):
        sync()
        t = time.perf_counter()
        fn(i)
        sync()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def load(portrait: str, weights: str | None, frames: int = 40):
    """(neural engine, target shapes of lp_d10's first ``frames`` frames) for ``portrait``."""
    image = read_image(str(MEDIA / "portraits" / portrait), "portrait")
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        built = engines(image, tracker.track(image, None)[0], weights)
        tracker.reset()
        with VideoSource(MEDIA / "driving" / "lp_d10.mp4") as video:
            faces = [tracker.track(f.image, int(f.pts * 1000)) for f, _ in zip(video, range(frames), strict=False)]
    built["geometric"].close()
    neural = built["neural"]
    neural.render(None, faces[0][0], 0.0)
    return neural, [neural.transformer.transform(f[0]) for f in faces if f]


def cv2_rows(stage, frames: list[dict], n: int) -> dict[str, float]:
    """Per-step ms of the numpy/cv2 path (``NeuralFaceReenactor``)."""
    (x0, y0, x1, y1), box_matrix = stage._box, stage._box_matrix
    none = lambda: None  # noqa: E731
    f = lambda i: frames[i % len(frames)]  # noqa: E731
    gen_in = [torch.from_numpy(to_tensor_layout(stage.square, fr["coarse"], fr["heat"])[None]) for fr in frames]
    stack = [np.dstack([(fr["face"] - fr["coarse"]) * stage._edge[..., None], stage._edge]) for fr in frames]
    source = stage.source
    return {
        "heatmaps": median_ms(lambda i: heatmaps(f(i)["lm"], stage.size), n, none),
        "coarse warp (remap)": median_ms(lambda i: cv2.remap(stage.square, *f(i)["cmaps"], cv2.INTER_LINEAR,
                                                             borderMode=cv2.BORDER_REPLICATE), n, none),
        "generator": median_ms(lambda i: stage.chosen.backend.infer({"x": gen_in[i % len(frames)]}), n, none),
        "back-warp + full warp + mask": median_ms(lambda i: (
            cv2.warpAffine(stack[i % len(frames)], box_matrix, (x1 - x0, y1 - y0), flags=INVERSE),
            cv2.remap(source.crop, *f(i)["fmaps"], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            cv2.remap(source.head_mask, *f(i)["fmaps"], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)), n, none),
        "whole render (maps included)": median_ms(lambda i: stage.render(f(i)["target"], None, None), n, none),
    }


def torch_rows(stage, frames: list[dict], n: int, device: torch.device) -> dict[str, float]:
    """Per-step ms of ``DeviceReenactorPath`` on ``device`` (fp16 generator on CUDA)."""
    cuda = device.type == "cuda"
    gen = open_stage_model(GENERATOR, ModelConfig(device=str(device), precision="fp16")).backend if cuda \
        else stage.chosen.backend
    path = DeviceReenactorPath(stage.source, stage.square, stage.matrix, stage._edge, stage._coarse.warp, device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    up = [path.upload(fr["lm"], fr["cmaps"], fr["fmaps"]) for fr in frames]
    u = lambda i: up[i % len(frames)]  # noqa: E731
    up_cells = [path.upload(fr["lm"], fr["ccells"], fr["fcells"]) for fr in frames]
    c = lambda i: up_cells[i % len(frames)]  # noqa: E731
    x = [torch.cat([path._source_in, path.square / 127.5 - 1, path._heatmaps(v[0])])[None] for v in up]
    stack = torch.zeros(4, path.size, path.size, device=device)
    ring = PinnedRing((*stage.source.crop.shape[:2], 3), torch.uint8, 2, device)
    with torch.inference_mode():
        rows = {
            "upload (landmarks + maps)": median_ms(lambda i: path.upload(
                frames[i % len(frames)]["lm"], frames[i % len(frames)]["cmaps"], frames[i % len(frames)]["fmaps"]),
                n, sync),
            "heatmaps": median_ms(lambda i: path._heatmaps(u(i)[0]), n, sync),
            "coarse warp (remap)": median_ms(lambda i: device_ops.remap(path.square, u(i)[1], u(i)[2]), n, sync),
            "generator": median_ms(lambda i: gen.infer({"x": x[i % len(frames)]}), n, sync),
            "back-warp + full warp + mask": median_ms(lambda i: (
                device_ops.affine_back(stack, None, path.crop_size, grid=path._grid),
                device_ops.remap(path.crop, u(i)[3], u(i)[4]),
                device_ops.remap(path.head_mask[None], u(i)[3], u(i)[4], "constant")), n, sync),
            "whole step (on device)": median_ms(lambda i: path.step(*u(i), generator=gen), n, sync),
            "upload (landmarks + cell maps)": median_ms(lambda i: path.upload(
                frames[i % len(frames)]["lm"], frames[i % len(frames)]["ccells"], frames[i % len(frames)]["fcells"]),
                n, sync),
            "whole step from cell maps": median_ms(lambda i: path.step_cells(*c(i), generator=gen), n, sync),
        }
        image = path.step(*u(0), generator=gen)[0].clone()
        rows["download (ring copy, waited)"] = median_ms(lambda i: ring.copy_from(image)[1].synchronize(), n, sync)
        if cuda:
            graphed = GraphedModule(lambda *a: path.step_cells(*a, generator=gen), *up_cells[0])
            rows["step from cells as a CUDA graph"] = median_ms(lambda i: graphed(*c(i)), n, sync)
    return rows


def prepare_frames(stage, targets) -> list[dict]:
    """Per target: landmarks in the square, both maps, the cv2 inputs and the generator face."""
    frames = []
    for target in targets:
        lm = apply_affine(stage.matrix, target.landmarks)
        cmaps = stage._coarse.maps(lm)
        face, coarse, _ = stage.generate(target.landmarks)
        geometric = stage._geometric
        frames.append({"target": target, "lm": lm, "cmaps": cmaps, "fmaps": geometric.maps(target),
                       "ccells": stage._coarse.maps(lm, full=False), "fcells": geometric.maps(target, full=False),
                       "coarse": coarse, "heat": heatmaps(lm, stage.size), "face": face})
    return frames


def fit(weights: str | None) -> None:
    """Print the heatmap difference to cv2 for a range of line half-widths."""
    lms = []
    for portrait in ("lp_s42.jpg", "obama.jpg"):
        engine, targets = load(portrait, weights, 240)
        lms += [apply_affine(engine.reenactor.matrix, t.landmarks) for t in targets[::8]]
        engine.close()
    size = 128
    refs = [heatmaps(lm, size) for lm in lms]
    for width in (1.0, 1.1, 1.2, 1.25, 1.3, 1.4):
        device_ops.LINE_HALF_WIDTH = width
        diffs = np.array([np.abs(device_ops.Heatmaps(size)(torch.from_numpy(lm)).numpy() - ref).mean((1, 2))
                          for lm, ref in zip(lms, refs, strict=True)])
        print(f"half-width {width:4.2f}: mean abs diff {diffs.mean():.5f} (worst region {diffs.mean(0).max():.4f}) "
              f"over {len(lms)} frames")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--fit", action="store_true", help="fit the heatmap line width instead of timing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.fit:
        fit(args.weights)
        return 0
    engine, targets = load("obama.jpg", args.weights)
    stage = engine.reenactor
    geometric = stage._geometric
    frames = prepare_frames(stage, targets)
    maps = median_ms(lambda i: (stage._coarse.maps(frames[i % len(frames)]["lm"]),
                                geometric.maps(frames[i % len(frames)]["target"])), args.n, lambda: None)
    cells = median_ms(lambda i: (stage._coarse.maps(frames[i % len(frames)]["lm"], full=False),
                                 geometric.maps(frames[i % len(frames)]["target"], full=False)), args.n, lambda: None)
    numpy_rows = cv2_rows(stage, frames, args.n)
    device = torch.device(args.device)
    device_rows = torch_rows(stage, frames, args.n, device)
    crop = stage.source.crop
    print(f"threads {args.threads}; source crop {crop.shape[1]}x{crop.shape[0]}, square {stage.size}; "
          f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}")
    print(f"  {'host maps (both paths)':32s} {maps:8.2f} ms")
    print(f"  {'host cell maps (torch path)':32s} {cells:8.2f} ms")
    print(f"  {'step':32s} {'numpy/cv2':>11s} {'torch':>9s}")
    for name in dict.fromkeys([*numpy_rows, *device_rows]):
        a, b = numpy_rows.get(name), device_rows.get(name)
        print(f"  {name:32s} {'' if a is None else f'{a:8.2f} ms':>11s} {'' if b is None else f'{b:6.2f} ms':>9s}")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
