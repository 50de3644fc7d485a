"""``facepaint-live train``: track the clips once into the cache, then train the chosen models
(``--models``, all by default) through the one loop; every model's weights land in ``OUT/weights``,
which ``--weights OUT`` reads. Every requirement is checked before the cache is built."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from facepaint.engine.errors import ConfigError
from facepaint.runtime.training.models import MODELS

EXAMPLES = """examples:
  facepaint-live train --data my_clips/ --out my_weights/ --steps 2000        clips are tracked into my_weights/cache
  facepaint-live train --data my_clips/ --out my_weights/ --resume            continue the runs in my_weights/
  facepaint-live train --config train.toml --set generator.perceptual=0      settings from a file, one changed
  facepaint-live --source me.jpg --driving talk.mp4 --weights my_weights/ --reenactor neural --output out.mp4

models (each a TOML table of its settings; --set <model>.<key>=<value>):
""" + "\n".join(f"  {m.name:12s} {m.help}; {m.config().steps} steps unless --steps" for m in MODELS)


@dataclass(frozen=True)
class Flag:
    """One flag of ``train``: its config key (dotted: a table's key) and how its text is read."""

    flag: str
    key: str
    parse: Callable[[str], Any]
    help: str


def _models(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


FLAGS = (
    Flag("--data", "data", str, "a folder of video clips (tracked into the cache) or a cache folder"),
    Flag("--out", "out", str, "output folder: runs/<model>/ (checkpoint, metrics.jsonl, samples) and weights/"),
    Flag("--val", "val", str, "a clip or cache folder to report validation figures on (never trained on)"),
    Flag("--cache", "cache_dir", str, "where to build the cache of a clip folder (default OUT/cache)"),
    Flag("--models", "models", _models, "comma-separated models to train (default: "
         + ",".join(m.name for m in MODELS) + ")"),
    Flag("--steps", "steps", int, "steps of EVERY model trained (default: each model's own, see [<model>] steps)"),
    Flag("--device", "device", str, "cpu (default) or cuda"),
    Flag("--threads", "threads", int, "torch CPU threads (default: torch's)"),
    Flag("--max-frames", "cache.max_frames", int, "frames kept per clip when building the cache (default 150)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``train`` parser (flags from ``FLAGS``)."""
    p = argparse.ArgumentParser(prog="facepaint-live train", epilog=EXAMPLES,
                                description="Train the neural stages on your own talking-head clips.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a TOML file of training settings (flags win over it)")
    for row in FLAGS:
        p.add_argument(row.flag, dest=row.key, type=row.parse, default=None, help=row.help,
                       metavar=row.key.rpartition(".")[2].upper())
    p.add_argument("--resume", action="store_true", default=None, help="continue the runs in --out")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one setting, as in the TOML file (repeatable), e.g. generator.perceptual=0")
    return p


def args_to_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given (and every ``--set``) as a nested mapping for ``build_plan``."""
    layer: dict[str, Any] = {}
    keys = [row.key for row in FLAGS] + ["resume"]
    for key in keys:
        if getattr(args, key) is not None:
            _put(layer, key, getattr(args, key))
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. generator.perceptual=0")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word is a string, as `--set device=cuda`
        _put(layer, key.strip(), value)
    return layer


def _put(layer: dict[str, Any], dotted: str, value: Any) -> None:
    *tables, last = dotted.split(".")
    for table in tables:
        layer = layer.setdefault(table, {})
    layer[last] = value


def _report(name: str, row: dict[str, float]) -> None:
    print(json.dumps({"model": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}}),
          file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Run ``train``; returns the exit code."""
    from facepaint.runtime.config import load_toml
    from facepaint.runtime.training.config import build_plan
    from facepaint.runtime.training.models import train_models
    from facepaint.runtime.training.prepare import prepare

    args = build_parser().parse_args(argv)
    plan = build_plan(*([load_toml(args.config)] if args.config else []), args_to_layer(args))
    data = prepare(plan, lambda line: print(line, file=sys.stderr, flush=True))
    run = plan.run
    start = time.perf_counter()
    paths = train_models(plan.models, data, Path(run.out), run.device, run.resume, _report)
    print(f"done in {time.perf_counter() - start:.0f} s: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
