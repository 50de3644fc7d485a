"""Before the first step: every requirement of a ``train`` run checked, then the clips cached and
read. A run that cannot finish stops here, in seconds, with a one-line error (it used to stop
after minutes of tracking and training, when the perceptual loss first looked for its backbone)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from facepaint.engine.errors import ConfigError, InputError
from facepaint.runtime.training.cache import CACHE_VERSION, build_cache, clip_files, is_cache, load_cache
from facepaint.runtime.training.checkpoint import check_run
from facepaint.runtime.training.config import TrainPlan
from facepaint.runtime.training.loop import TrainData
from facepaint.runtime.training.models import BY_NAME


def check(plan: TrainPlan) -> None:
    """Raise the first problem the run would meet (a ``FacepaintError``), before any work."""
    import torch

    run = plan.run
    if run.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda: no CUDA device is available; use --device cpu")
    for flag, folder in (("--data", run.data), ("--val", run.val)):
        if folder is not None:
            _check_clips(flag, Path(folder))
    runs = Path(run.out) / "runs"
    if run.resume and not any((runs / name / "config.json").is_file() for name, _ in plan.models):
        raise InputError(f"--resume: no run of {', '.join(run.models)} in {runs}; leave out --resume to start one")
    for name, config in plan.models:
        entry = BY_NAME[name]
        if entry.check is not None:
            entry.check(config)
        check_run(runs / name, name, config, run.resume)
    if not all(is_cache(Path(f)) for f in (run.data, run.val) if f is not None):
        _check_tracker()


def _check_clips(flag: str, folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"{flag} {folder} is not a folder; give a folder of clips or a cache")
    if is_cache(folder):
        version = json.loads((folder / "manifest.json").read_text()).get("version")
        if version != CACHE_VERSION:
            raise InputError(f"{flag} {folder} is a cache of version {version}, expected {CACHE_VERSION}; "
                             "give the clip folder to rebuild it")
    elif not clip_files(folder):
        raise InputError(f"{flag} {folder} holds no video clip and no cache (manifest.json)")


def _check_tracker() -> None:
    """The tracker that builds the cache opens (its model file is present)."""
    _tracker().close()


def _tracker():
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    return MediaPipeTracker(TrackerConfig(smoothing=False))


def _clips(folder: Path, cache: Path, plan: TrainPlan, say: Callable[[str], None]) -> Path:
    """``folder`` if it is a cache; otherwise its clips tracked into ``cache``."""
    if is_cache(folder):
        return folder
    say(f"tracking the clips of {folder} into {cache} ...")
    build_cache(folder, cache, plan.run.cache, _tracker, lambda line: say(f"  {line}"))
    return cache


def prepare(plan: TrainPlan, say: Callable[[str], None]) -> TrainData:
    """Check the run (``check``), set torch's threads, build or reuse the caches and read them."""
    import torch

    check(plan)
    run = plan.run
    if run.threads:
        torch.set_num_threads(run.threads)
    out = Path(run.out)
    cache = _clips(Path(run.data), Path(run.cache_dir) if run.cache_dir else out / "cache", plan, say)
    val = load_cache(_clips(Path(run.val), out / "val_cache", plan, say))[1] if run.val else None
    clips = load_cache(cache)[1]
    say(f"{len(clips)} clips, {sum(len(c.crops) for c in clips)} frames; training {', '.join(run.models)}")
    return TrainData(cache, clips, val)
