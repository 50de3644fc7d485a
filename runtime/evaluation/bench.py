"""``facepaint-live bench``: how fast the full pipeline renders a file, against its floor.

Three runs on the same driving clip, in one process, with the same encoder settings:

* ``fps``: the full pipeline (the main command: decode, track, transform, reenact, mix, encode);
* ``floor_fps``: decode, track, encode: what any tracker-driven renderer has to pay;
* ``passthrough_fps``: decode, encode: the cost of the file I/O alone.

``ratio = fps / floor_fps`` is the headline: 1.0 would mean reenactment costs nothing beyond
tracking. The JSON keys are ``BENCH_KEYS`` (pinned by a test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facepaint.engine.errors import BackendUnavailable, ConfigError, InputError
from facepaint.runtime.config import load_toml, merge_layers
from facepaint.runtime.flags import BENCH, add_flags, config_layer

SCHEMA = "facepaint-bench/1"
BENCH_KEYS = ("schema", "fps", "floor_fps", "ratio", "passthrough_fps", "stages", "floor_stages",
              "latency_ms", "frames", "runs", "source", "driving", "size", "device", "encoder", "machine", "date")
# The headline pair: a 512x512 portrait driven by a 512x512, 448-frame talking clip.
DEFAULT_SOURCE = "portraits/lp_s42.jpg (in the shared media folder)"


def machine_info() -> dict[str, Any]:
    """CPU model and core count (from /proc/cpuinfo where it exists), GPU name or None."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: platform's answer stands
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass  # no torch, no GPU to name
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "gpu": gpu, "platform": platform.platform()}


def check_device(device: str, engine: Mapping[str, Any] | None = None) -> None:
    """Refuse, before any round, a device this machine does not have or the stages cannot use.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        engine: The ``[engine]`` config layer of the render (its stage kinds).

    Raises:
        ConfigError: On an unknown device name, or a GPU device with only geometric stages (they
            run on the CPU; only the neural stages use a device).
        BackendUnavailable: For ``cuda`` without a CUDA GPU (or without torch's CUDA build).
    """
    if device not in ("cpu", "cuda", "auto") and not device.startswith("cuda:"):
        raise ConfigError(f"--device must be cpu, cuda or auto, got '{device}'")
    if device == "cpu":
        return
    import torch

    if device != "auto" and not torch.cuda.is_available():
        raise BackendUnavailable(f"--device {device}: no CUDA GPU is visible to torch "
                                 f"(torch {torch.__version__}); run with --device cpu")
    stages = ("transformer", "reenactor", "mixer")
    kinds = {(engine or {}).get(stage, {}).get("kind", "geometric") for stage in stages}
    if device != "auto" and kinds == {"geometric"}:
        raise ConfigError(f"--device {device}: the geometric stages run on the CPU; add --reenactor neural "
                          "(or another neural stage) to use the GPU, or run with --device cpu")


def _timed_pipeline(name: str, driving: str, out_path: str,
                    track: Callable[[Any], Any] | None) -> dict[str, Any]:
    """Run decode (-> track) -> encode through the runtime pipeline; returns its statistics."""
    from facepaint.plugins.sinks.file import EncoderConfig, FileSink
    from facepaint.plugins.sources.video import VideoSource
    from facepaint.runtime.pipeline import Pipeline

    # The main command's sink and default encoder settings, audio copied as it does.
    with VideoSource(driving) as video, FileSink(out_path, fps=video.rate, size=video.size,
                                                 encoder=EncoderConfig(), audio=video.audio) as sink:
        with Pipeline(name) as pipe:
            pipe.source("decode", video)
            if track is not None:
                pipe.stage("track", track, capacity=4)
            pipe.stage("encode", sink.write, capacity=4)
            pipe.start()
            pipe.join()
        return pipe.stats.to_dict()


def run_floor(driving: str, out_path: str) -> dict[str, Any]:
    """Decode -> track (the main command's default tracker settings) -> encode."""
    from facepaint.plugins.base import StreamTimestamps, load_plugin
    from facepaint.plugins.trackers.config import TrackerConfig

    config = TrackerConfig()
    tracker = load_plugin("facepaint.trackers", config.name)(config)
    timestamp = StreamTimestamps()
    try:
        def track(frame: Any) -> Any:
            tracker.track(frame.image, timestamp(frame.pts))
            return frame

        return _timed_pipeline("floor", driving, out_path, track)
    finally:
        tracker.close()


def run_full(source: str, driving: str, out_path: str, engine: Mapping[str, Any] | None = None,
             size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The main command's render of the pair (the library call it makes); returns its statistics."""
    from facepaint.runtime.evaluation.quality import render

    return render(source, driving, out_path, engine, size)


def bench(source: str, driving: str, engine: Mapping[str, Any] | None = None, max_frames: int | None = None,
          repeat: int = 2, progress: Callable[[str], None] | None = None,
          size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Measure the full pipeline, its floor and a passthrough on one clip.

    The three runs alternate ``repeat`` times and each reports its best: on a shared machine a
    slow run measures the neighbours' load, and alternating keeps one kind from getting every
    quiet moment.

    Args:
        source: Source portrait.
        driving: Driving video.
        engine: The ``[engine]`` config layer of the full render (stage kinds, model device...).
        max_frames: Use only the first frames of the clip (None: all).
        repeat: Rounds of the three runs (>= 1).
        progress: Called with one-line progress messages.
        size: Fit the full render's output inside this (width, height), as ``--size`` does (None: the
            portrait's own resolution, the offline default). The floor and passthrough do not depend on it.

    Returns:
        The report, keyed as ``BENCH_KEYS``.

    Raises:
        InputError: Missing files or a failed render.
        ConfigError: ``repeat`` < 1.
        BackendUnavailable: ``cuda`` without CUDA.
    """
    say = progress or (lambda _msg: None)
    device = str((engine or {}).get("model", {}).get("device", "cpu"))
    check_device(device, engine)
    if repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {repeat}")
    for path in (source, driving):
        if not Path(path).is_file():
            raise InputError(f"file not found: {path}")
    runs: dict[str, list[dict]] = {"full": [], "floor": [], "passthrough": []}
    with tempfile.TemporaryDirectory(prefix="facepaint-bench-") as tmp:
        clip = driving
        if max_frames is not None:
            from facepaint.runtime.evaluation.quality import trim_video

            clip = str(Path(tmp) / "driving.mp4")
            trim_video(driving, clip, max_frames)
        for i in range(repeat):
            say(f"round {i + 1}/{repeat}: passthrough (decode -> encode)")
            runs["passthrough"].append(_timed_pipeline("passthrough", clip, str(Path(tmp) / "pass.mp4"), None))
            say(f"round {i + 1}/{repeat}: floor (decode -> track -> encode)")
            runs["floor"].append(run_floor(clip, str(Path(tmp) / "floor.mp4")))
            say(f"round {i + 1}/{repeat}: full pipeline")
            runs["full"].append(run_full(source, clip, str(Path(tmp) / "full.mp4"), engine, size))
    return _report(source, driving, device, runs, size)


def _report(source: str, driving: str, device: str, runs: dict[str, list[dict]],
            size: tuple[int, int] | None = None) -> dict:
    from dataclasses import asdict

    from facepaint.plugins.sinks.file import EncoderConfig

    best = {kind: max(stats, key=lambda s: float(s.get("fps", 0.0))) for kind, stats in runs.items()}
    full, floor = best["full"], best["floor"]
    fps, floor_fps = float(full.get("fps", 0.0)), float(floor.get("fps", 0.0))
    body = {"schema": SCHEMA, "fps": round(fps, 2), "floor_fps": round(floor_fps, 2),
            "ratio": round(fps / floor_fps, 3) if floor_fps > 0 else None,
            "passthrough_fps": round(float(best["passthrough"].get("fps", 0.0)), 2),
            "stages": full.get("stages", {}), "floor_stages": floor.get("stages", {}),
            "latency_ms": full.get("latency_ms"), "frames": full.get("frames_out", floor.get("frames_out")),
            "runs": {kind: [round(float(s.get("fps", 0.0)), 2) for s in stats] for kind, stats in runs.items()},
            "source": source, "driving": driving, "size": list(size) if size else None, "device": device,
            "encoder": asdict(EncoderConfig()),
            "machine": machine_info(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return {key: body[key] for key in BENCH_KEYS}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``facepaint-live bench``."""
    p = argparse.ArgumentParser(prog="facepaint-live bench",
                                description="Speed report: full pipeline fps beside the floor "
                                            "(decode, track, encode) and a decode-encode passthrough.")
    p.add_argument("--driving", required=True, help="driving video (headline: lp_d10.mp4, 512x512, 448 frames)")
    p.add_argument("--source", required=True, help=f"source portrait (headline: {DEFAULT_SOURCE})")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the report to this JSON file")
    p.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames of the clip")
    p.add_argument("--repeat", type=int, default=2, help="rounds of the three runs; each reports its best (default 2)")
    add_flags(p, BENCH)
    return p


def summary_lines(report: dict) -> list[str]:
    """The report in a few human-readable lines."""
    lines = [f"bench: {Path(report['driving']).name} ({report['frames']} frames) on {report['machine']['cpu']} "
             f"x{report['machine']['cores']}, device {report['device']}"
             + (f", output fitted inside {report['size'][0]}x{report['size'][1]}" if report["size"] else ""),
             f"  full {report['fps']:.1f} fps | floor {report['floor_fps']:.1f} fps | ratio "
             f"{report['ratio'] if report['ratio'] is not None else '-'} | passthrough "
             f"{report['passthrough_fps']:.1f} fps"]
    for name, s in report["stages"].items():
        lines.append(f"  {name:12s} p50 {s.get('p50', 0):7.2f} ms   p95 {s.get('p95', 0):7.2f} ms")
    return lines


def main(argv: Sequence[str]) -> int:
    """Entry point of ``facepaint-live bench``: progress on stderr, the summary on stdout.

    Raises:
        FacepaintError: Bad flags, missing files, ``cuda`` without CUDA, a failed render.
    """
    args = build_parser().parse_args(list(argv))
    if args.max_frames is not None and args.max_frames < 2:
        raise ConfigError(f"--max-frames must be >= 2, got {args.max_frames}")
    layer = merge_layers(load_toml(args.config) if args.config else {}, config_layer(args, BENCH))
    report = bench(args.source, args.driving, layer.get("engine", {}), args.max_frames, args.repeat,
                   progress=lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True), size=layer.get("size"))
    print("\n".join(summary_lines(report)))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    return 0
