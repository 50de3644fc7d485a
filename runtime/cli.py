"""The ``facepaint-live`` command: render a file, run live, or ``eval`` / ``bench``.

Every FacepaintError ends the program with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from facepaint.engine.errors import FacepaintError
from facepaint.runtime.exits import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    OneLineParser,
    Terminated,
    report_unexpected,
    sigterm_as_interrupt,
)
from facepaint.runtime.flags import MAIN, add_flags, config_layer

EXAMPLES = """examples:
  facepaint-live --source me.jpg --driving talk.mp4 --output out.mp4   render a video (audio kept)
  facepaint-live --source me.jpg --driving face.jpg --output out.png   one still
  facepaint-live --source me.jpg --expression happy --output happy.png  edit the still (no driving)
  facepaint-live --source me.jpg --expressions all --output sheet.png  contact sheet of every expression
  facepaint-live --source me.jpg --cam 0                               live, into the virtual camera
  facepaint-live --source take1.mp4 --driving me.mp4 --output take2.mp4 a video as the source (video-to-video)
  facepaint-live --source me.jpg --cam 0 --preview --output rec.mp4    plus preview window and recording
  facepaint-live eval --source me.jpg --driving talk.mp4 --json r.json quality report
  facepaint-live bench --driving talk.mp4 --json bench.json            speed report
  facepaint-live train --data clips/ --out my_weights/                  train the neural reenactor
  facepaint-live compile --format onnx --out onnx/ --verify             the neural stages for onnxruntime
  facepaint-live batch jobs.csv --out renders/                         many renders, resumable (batch --help)
  facepaint-live ui                                                    a local web page (needs the [ui] extra)
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the main (render / live) command: the ``MAIN`` rows of ``flags.FLAGS``."""
    p = OneLineParser(
        prog="facepaint-live",
        description="A portrait takes on the expression and head motion of a driving face.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, MAIN)
    return p


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
    config = build_app_config(*layers, config_layer(args))
    from facepaint.runtime.source_track import is_video_source

    if is_video_source(config.source) and not config.live:
        from facepaint.runtime.source_video import run_source_video

        return run_source_video(config)
    if config.still:
        from facepaint.runtime.expression import run_still

        return run_still(config)
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
