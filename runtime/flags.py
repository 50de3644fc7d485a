"""Command-line flags shared by the main command, ``eval`` and ``bench``: which stages run and how
the neural ones run. Each parser gets the same flags, and each turns them into the same ``[engine]``
config layer, so a setting means one thing everywhere."""

from __future__ import annotations

import argparse
from typing import Any

from facepaint.engine.stages import BACKENDS, DEVICES, PRECISIONS, STAGE_KINDS

_STAGES = (("transformer", "landmark transformer"), ("reenactor", "face reenactor"), ("mixer", "background mixer"))
_MODEL_KEYS = ("weights", "backend", "device", "precision")


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """``--transformer/--reenactor/--mixer KIND`` and the neural model flags."""
    for stage, what in _STAGES:
        p.add_argument(f"--{stage}", choices=STAGE_KINDS, help=f"{what}: geometric (default, no weights) or neural")
    p.add_argument("--weights", help="folder of trained weights (a `train` output) or compiled engines for the "
                   "neural stages (default: the weights shipped in the package)")
    p.add_argument("--backend", choices=BACKENDS, help="how the neural stages run (default torch)")
    p.add_argument("--device", choices=DEVICES, help="where the neural stages run (default cpu)")
    p.add_argument("--precision", choices=PRECISIONS, help="neural compute precision (default: the model's own)")
    p.add_argument("--allow-fp32", action="store_true", help="run fp32 where fp16 is asked for and not possible")


def engine_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[engine]`` config layer of the flags ``add_engine_flags`` added (only those given)."""
    engine: dict[str, Any] = {}
    for stage, _ in _STAGES:
        if getattr(args, stage):
            engine[stage] = {"kind": getattr(args, stage)}
    model = {key: getattr(args, key) for key in _MODEL_KEYS if getattr(args, key) is not None}
    if args.allow_fp32:
        model["allow_fp32"] = True
    if model:
        engine["model"] = model
    return engine
