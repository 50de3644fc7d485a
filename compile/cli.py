"""``facepaint-live compile FORMAT SOURCE --output OUT``: run one exporter of ``FORMATS``.

This is the command that ``EngineMismatch`` messages print to rebuild an engine (also reachable as
``python -m facepaint.compile``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facepaint.compile.config import CompileConfig
from facepaint.engine.backends.base import FORMATS, format_named, load_object
from facepaint.engine.config import build_config
from facepaint.engine.errors import FacepaintError


def _parser() -> argparse.ArgumentParser:
    exportable = [f.name for f in FORMATS if f.exporter]
    parser = argparse.ArgumentParser(prog="facepaint-live compile",
                                     description="Export a model to another format of the format table.")
    parser.add_argument("format", choices=exportable, help="format to write")
    parser.add_argument("source", type=Path, help="model in the format this one is built from")
    parser.add_argument("--output", "-o", type=Path, help="output file (default: source with the format's suffix)")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--allow-fp32", action="store_true", help="build fp32 where fp16 is not fast")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--profile", action="append", default=[], metavar="NAME=MIN:OPT:MAX",
                        help="optimization profile of one input, shapes like 1x3x256x256 (repeatable)")
    parser.add_argument("--workspace-gb", type=float, default=4.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the exporter chosen on the command line.

    Returns:
        0 on success; errors exit with code 2 and a one-line message.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        fmt = format_named(args.format)
        if fmt.source is None or fmt.exporter is None:
            parser.error(f"{fmt.name} is the format compile reads, not one it writes")
        source = format_named(fmt.source)
        if args.source.suffix.lower() != source.suffix:
            parser.error(f"{fmt.name} is built from {source.name} ({source.suffix}) files, got '{args.source}'")
        config = build_config(CompileConfig, {
            "precision": args.precision, "allow_fp32": args.allow_fp32, "opset": args.opset,
            "profiles": tuple(args.profile), "workspace_gb": args.workspace_gb})
        out = args.output or args.source.with_suffix(fmt.suffix)
        load_object(fmt.exporter)(args.source, out, config)
    except FacepaintError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    sys.stdout.write(f"{out}\n")
    return 0

