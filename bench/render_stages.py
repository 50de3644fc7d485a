"""Per-stage cost of the render for a portrait at a given size, before a call or a long render.

Tracks ``--frames`` frames of the driving clip once, then renders them ``--rounds`` times through one
engine on this thread, timing each part of ``ReenactmentEngine.render``: transform (landmark
transformer), warp (crop and head mask remapped), paint (mouth, irises, lids), mix (face over the
background) and paste (the crop into the output frame). The portrait is resized to ``--portrait-size``
first (a 4000x3000 phone photo can be made from any portrait) and prepared for ``--size`` as the
main command does (live: the virtual camera's frame; offline: the portrait's own size by default).

Usage: ``python bench/render_stages.py [--source P] [--portrait-size WxH] [--size WxH] [--mouth-fill F]
[--json F] [--save F.npz | --compare F.npz]``. Prints one row per part (wall p50 / p95 ms, and the process's CPU
time p50, all threads: OpenCV's pool included) and ``render`` (warp + paint + mix + paste, the issue's
"render stage") and the output size. Wall timings are only meaningful on an otherwise idle machine;
the load average is printed with them, and the CPU time is the steadier figure on a shared one.
``--save`` keeps the first round's output frames; ``--compare`` renders the same frames and prints
the max / mean absolute pixel difference against a saved file (a speed change that should not change
the picture is checked with it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
PARTS = ("transform", "warp", "paint", "mix", "paste")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", default=str(MEDIA / "portraits" / "lp_s42.jpg"), help="portrait image")
    p.add_argument("--driving", default=str(MEDIA / "driving" / "lp_d10.mp4"), help="driving clip")
    p.add_argument("--portrait-size", help="resize the portrait to WxH first (default: as it is)")
    p.add_argument("--size", help="the output frame WxH the portrait is prepared for (default: its own size)")
    p.add_argument("--mouth-fill", help="mouth_fill: paint, neural, hybrid or off (default: the config's)")
    p.add_argument("--frames", type=int, default=120, help="driving frames tracked (default 120)")
    p.add_argument("--rounds", type=int, default=2, help="times each frame is rendered (default 2)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--save", help="write the first round's output frames to this .npz")
    p.add_argument("--compare", help="print the pixel difference of the output frames against this .npz")
    return p.parse_args(argv)


def resized_portrait(source: str, size: str | None, folder: Path) -> str:
    """``source``, or a copy resized to ``size`` (WxH) written to ``folder``."""
    if size is None:
        return source
    w, h = (int(v) for v in size.lower().split("x"))
    image = cv2.imread(source)
    if image is None:
        raise SystemExit(f"cannot read {source}")
    path = folder / f"portrait_{w}x{h}.png"
    cv2.imwrite(str(path), cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC))
    return str(path)


def measure(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """Track the frames, render them ``rounds`` times and time each part (ms per frame)."""
    from facepaint.plugins.base import Frame
    from facepaint.runtime.config import build_app_config
    from facepaint.runtime.reference import open_driving
    from facepaint.runtime.session import Session

    layer: dict[str, Any] = {"source": source, "driving": args.driving, "output": "unused.mp4"}
    if args.size:
        layer["size"] = [int(v) for v in args.size.lower().split("x")]
    if args.mouth_fill:
        layer["engine"] = {"reenactor": {"mouth_fill": args.mouth_fill}}
    config = build_app_config(layer)
    with Session(config, live=False, limit=args.frames) as session, open_driving(args.driving) as video:
        driver = session.driver()
        tracked = []
        for frame in video:
            if frame.index >= args.frames:
                break
            tracked += driver.smooth(driver.track(Frame(frame.image, frame.index, frame.pts, frame.captured_at)))
        tracked += driver.flush()
        engine = session.engine
        times: dict[str, list[float]] = {name: [] for name in PARTS}
        cpu: dict[str, list[float]] = {name: [] for name in PARTS}
        outputs: list[np.ndarray] = []
        for round_ in range(args.rounds):
            for item in tracked:
                if item.face is None:
                    continue
                out = _timed_render(engine, item.frame.image, item.face, times, cpu)
                if round_ == 0:
                    outputs.append(out)
        shape = session.engine.source.image.shape
    return _figures(times, cpu, shape, outputs)


def _timed_render(engine: Any, frame: np.ndarray, face: Any, times: dict[str, list[float]],
                  cpu: dict[str, list[float]]) -> np.ndarray:
    """``ReenactmentEngine.render`` of a tracked face, part by part (no face-lost handling)."""
    marks = [(time.perf_counter(), time.process_time())]
    target = engine.transformer.transform(face)
    marks.append((time.perf_counter(), time.process_time()))
    warped = engine.reenactor.warp(target)
    marks.append((time.perf_counter(), time.process_time()))
    engine.reenactor.paint(warped.image, target, frame, np.asarray(face.landmarks))
    marks.append((time.perf_counter(), time.process_time()))
    crop = engine.mixer.mix(warped)
    marks.append((time.perf_counter(), time.process_time()))
    out: np.ndarray = engine.mixer.paste(crop)
    marks.append((time.perf_counter(), time.process_time()))
    for k, name in enumerate(PARTS):
        times[name].append((marks[k + 1][0] - marks[k][0]) * 1000.0)
        cpu[name].append((marks[k + 1][1] - marks[k][1]) * 1000.0)
    return out


def _figures(times: dict[str, list[float]], cpu: dict[str, list[float]], shape: tuple[int, ...],
             outputs: list[np.ndarray]) -> dict[str, Any]:
    def row(wall: Any, used: Any) -> dict[str, float]:
        return {"p50_ms": float(np.median(wall)), "p95_ms": float(np.percentile(wall, 95)),
                "cpu_p50_ms": float(np.median(used)), "cpu_mean_ms": float(np.mean(used))}

    rows = {name: row(times[name], cpu[name]) for name in PARTS}
    render = ("warp", "paint", "mix", "paste")
    rows["render"] = row(np.sum([times[k] for k in render], axis=0), np.sum([cpu[k] for k in render], axis=0))
    out = outputs[-1] if outputs else None
    return {"stages": rows, "portrait_size": [int(shape[1]), int(shape[0])],
            "output_size": None if out is None else [int(out.shape[1]), int(out.shape[0])],
            "frames": len(times["warp"]), "load1": os.getloadavg()[0], "outputs": outputs}


def _difference(outputs: list[np.ndarray], path: str) -> str:
    """Max / mean absolute pixel difference of ``outputs`` against the frames saved in ``path``."""
    saved = np.load(path)["frames"]
    if len(saved) != len(outputs) or saved[0].shape != outputs[0].shape:
        raise SystemExit(f"{path} holds {len(saved)} frames of {saved[0].shape}, not {len(outputs)} of "
                         f"{outputs[0].shape}: render with the same --source/--driving/--frames/--size")
    diff = np.abs(np.stack(outputs).astype(np.int16) - saved.astype(np.int16))
    changed = int((diff.max(axis=(1, 2, 3)) > 0).sum())
    return (f"against {path}: max abs diff {int(diff.max())}, mean {float(diff.mean()):.5f}, "
            f"pixels changed {float((diff.max(axis=3) > 0).mean()) * 100:.3f} %, frames changed {changed}/{len(saved)}")


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the table."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, resized_portrait(args.source, args.portrait_size, Path(tmp)))
    w, h = result["portrait_size"]
    print(f"prepared portrait {w}x{h}, output {result['output_size']}, {result['frames']} renders, "
          f"load {result['load1']:.2f}")
    for name, row in result["stages"].items():
        print(f"  {name:10s} p50 {row['p50_ms']:7.2f} ms   p95 {row['p95_ms']:7.2f} ms   "
              f"cpu p50 {row['cpu_p50_ms']:7.2f} ms")
    outputs = result.pop("outputs")
    if args.save:
        np.savez_compressed(args.save, frames=np.stack(outputs))
    if args.compare:
        print(_difference(outputs, args.compare))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
