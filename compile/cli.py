"""``facepaint-live compile --format onnx|tensorrt --out DIR``: build the neural stages' models.

Without ``--model`` every stage model of ``--weights`` (default: the shipped weights) is compiled
into ``DIR``, which ``--weights DIR --backend onnxruntime|tensorrt|tensorrt-rtx`` then runs; with
``--model FILE`` one file is (the form ``EngineMismatch`` messages print to rebuild an engine).
Also reachable as ``python -m facepaint.compile``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facepaint.compile.config import CompileConfig
from facepaint.compile.models import COMPILED_FORMATS, check_source, check_tools, compile_models, compile_one
from facepaint.engine.config import build_config
from facepaint.engine.errors import FacepaintError
from facepaint.runtime.exits import OneLineParser

EXAMPLES = """examples:
  facepaint-live compile --format onnx --out onnx/ --verify              the shipped weights, checked against torch
  facepaint-live compile --format tensorrt --precision fp16 --out engines/    NVIDIA GPU, needs [tensorrt]
  facepaint-live compile --format onnx --weights my_weights/ --out my_onnx/   weights from `facepaint-live train`
  facepaint-live --source me.jpg --driving talk.mp4 --weights onnx/ --backend onnxruntime --reenactor neural
"""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="facepaint-live compile", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Compile the neural stages for onnxruntime or TensorRT.")
    parser.add_argument("--format", required=True, choices=COMPILED_FORMATS, help="what to build")
    parser.add_argument("--out", "-o", required=True, type=Path, help="output folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", type=Path, help="weights folder (default: the shipped weights)")
    source.add_argument("--model", type=Path, help="one .safetensors model (or .onnx for tensorrt)")
    parser.add_argument("--verify", action="store_true",
                        help="run each ONNX file in onnxruntime against torch and hold it to --atol")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest accepted |onnxruntime - torch|")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16", help="TensorRT precision")
    parser.add_argument("--allow-fp32", action="store_true", help="build fp32 where fp16 is not fast")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--profile", action="append", default=[], metavar="NAME=MIN:OPT:MAX",
                        help="TensorRT optimization profile of one input, shapes like 1x13x128x128 "
                             "(repeatable; default: batch 1)")
    parser.add_argument("--workspace-gb", type=float, default=4.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Compile as the command line says.

    Returns:
        0 on success; errors exit with code 2 and a one-line message.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(CompileConfig, {
            "precision": args.precision, "allow_fp32": args.allow_fp32, "opset": args.opset, "atol": args.atol,
            "profiles": tuple(args.profile), "workspace_gb": args.workspace_gb})
        if args.model is not None:
            if not args.model.is_file():
                parser.error(f"--model '{args.model}' does not exist")
            check_source(args.format, args.model)
            check_tools(args.format, args.verify)
            local = _beside(args.model, args.out)
            results = [compile_one(args.format, local, config, verify=args.verify)]
        else:
            results = compile_models(args.format, args.out, config, weights=args.weights, verify=args.verify)
    except FacepaintError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    for result in results:
        sys.stdout.write(result.line() + "\n")
    return 0


def _beside(model: Path, out: Path) -> Path:
    """``model`` (and its JSON) copied into ``out`` unless it is there already; the copy's path."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    local = out / model.name
    if local.resolve() != model.resolve():
        for suffix in (model.suffix, ".json"):
            if model.with_suffix(suffix).is_file():
                shutil.copyfile(model.with_suffix(suffix), local.with_suffix(suffix))
    return local
