"""``facepaint-live train``: track the clips once, then train the neural stages: the face generator,
and the landmark transformer with the background mixer (``--stages``). Every stage's weights land in
``--out``, which ``--weights`` then reads."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from facepaint.engine.errors import ConfigError, InputError

EXAMPLES = """examples:
  facepaint-live train --data my_clips/ --out my_weights/ --steps 20000      clips are tracked into my_weights/cache
  facepaint-live train --data my_weights/cache --out my_weights/ --resume    continue a run
  facepaint-live --source me.jpg --driving talk.mp4 --weights my_weights/ --reenactor neural --output out.mp4
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``train`` parser."""
    p = argparse.ArgumentParser(prog="facepaint-live train", epilog=EXAMPLES,
                                description="Train the neural face reenactor on your own talking-head clips.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a folder of video clips (tracked into a cache) or a cache folder")
    p.add_argument("--out", required=True, help="output folder: checkpoint, weights, metrics.jsonl, samples")
    p.add_argument("--cache", help="where to build the cache of a clip folder (default OUT/cache)")
    p.add_argument("--val", help="a cache or clip folder to report validation L1 on (never trained on)")
    p.add_argument("--steps", type=int, default=20000, help="train until this step (default 20000)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perceptual", type=float, default=1.0, help="MobileNetV2 feature loss weight (0: off)")
    p.add_argument("--gan", type=float, default=0.1, help="adversarial loss weight (0: no discriminator)")
    p.add_argument("--gan-start", type=int, default=300, help="step at which the adversarial losses start")
    p.add_argument("--region-gain", type=float, default=3.0, help="extra L1 weight on the mouth and eyes")
    p.add_argument("--width", type=int, default=16, help="generator width (first level channels)")
    p.add_argument("--blocks", type=int, default=3, help="generator residual blocks")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--max-frames", type=int, default=120, help="frames kept per clip when building a cache")
    p.add_argument("--stages", choices=["all", "generator", "transformer-mixer"],
                   help="which neural stages to train (default: all from a clip folder, the generator from a "
                   "generator cache; the transformer and mixer train from clips)")
    p.add_argument("--lmt-steps", type=int, help="landmark transformer steps (the mixer gets a quarter; "
                   "default: their own)")
    return p


def _cache(data: str, cache: Path, max_frames: int) -> Path:
    """``data`` if it is a cache; otherwise build/update the cache of its clips at ``cache``."""
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
    from facepaint.runtime.training.cache import CacheSettings, build_cache, is_cache

    path = Path(data)
    if not path.is_dir():
        raise InputError(f"--data {data} is not a folder; give a folder of clips or a cache")
    if is_cache(path):
        return path
    print(f"tracking the clips of {path} into {cache} ...", file=sys.stderr)
    build_cache(path, cache, CacheSettings(max_frames=max_frames),
                lambda: MediaPipeTracker(TrackerConfig(smoothing=False)),
                lambda line: print(f"  {line}", file=sys.stderr))
    return cache


def _train_transformer_and_mixer(args: argparse.Namespace, out: Path) -> None:
    """The landmark transformer and the background mixer, from the clips in ``--data``.

    Raises:
        ConfigError: When ``--data`` is a generator cache (these two stages train from clips).
    """
    from facepaint.runtime.training.cache import is_cache
    from facepaint.runtime.training.lmt_entry import train_transformer_and_mixer

    if is_cache(Path(args.data)):
        raise ConfigError(f"--data {args.data} is a generator cache; the landmark transformer and mixer train from "
                          "the clips themselves: give the clip folder, or --stages generator")
    print(f"training the landmark transformer and background mixer on {args.data} ...", file=sys.stderr)
    paths = train_transformer_and_mixer(Path(args.data), out, steps=args.lmt_steps, resume=args.resume,
                                        device=args.device, validate=Path(args.val) if args.val else None)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)


def main(argv: list[str]) -> int:
    """Run ``train``; returns the exit code."""
    args = build_parser().parse_args(argv)
    import torch

    from facepaint.engine.neural.generator import GeneratorConfig
    from facepaint.runtime.training.cache import load_cache
    from facepaint.runtime.training.trainer import TrainConfig, Trainer

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.stages is None:
        from facepaint.runtime.training.cache import is_cache

        args.stages = "generator" if is_cache(Path(args.data)) else "all"
    if args.stages != "generator":
        _train_transformer_and_mixer(args, out)
        if args.stages == "transformer-mixer":
            return 0
    try:
        train_cfg = TrainConfig(batch=args.batch, lr=args.lr, seed=args.seed, perceptual=args.perceptual,
                                gan=args.gan, gan_start=args.gan_start, region_gain=args.region_gain)
        gen_cfg = GeneratorConfig(width=args.width, blocks=args.blocks)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cache = _cache(args.data, Path(args.cache) if args.cache else out / "cache", args.max_frames)
    _, clips = load_cache(cache)
    val = load_cache(_cache(args.val, out / "val_cache", args.max_frames))[1] if args.val else None
    trainer = Trainer(clips, out, train_cfg, gen_cfg, args.device)
    if args.resume:
        if not trainer.resume():
            raise InputError(f"--resume: no checkpoint in {out / 'checkpoint'}")
    elif (out / "checkpoint").is_dir():
        raise ConfigError(f"{out} already holds a checkpoint; add --resume to continue it or pick another --out")
    print(f"training on {len(clips)} clips, {sum(len(c.crops) for c in clips)} frames, from step {trainer.step} "
          f"to {args.steps}", file=sys.stderr)
    start = time.perf_counter()

    def report(row: dict) -> None:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), file=sys.stderr,
              flush=True)

    trainer.run(args.steps, log_every=args.log_every, save_every=args.save_every,
                sample_every=args.save_every, val=val, progress=report)
    print(f"done: step {trainer.step} in {time.perf_counter() - start:.0f} s; weights in {out / 'weights'}",
          file=sys.stderr)
    return 0
