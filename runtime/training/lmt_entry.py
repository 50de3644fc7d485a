"""One call for the ``train`` command: cache the clips, train the landmark transformer and the
background mixer, and leave both weights files at the top of the output folder (what
``--weights <folder>`` reads)."""

from __future__ import annotations

import shutil
from pathlib import Path

from facepaint.runtime.training.lmt_cache import ClipCacheConfig, build_clip_cache
from facepaint.runtime.training.lmt_train import LmtTrainConfig, train_landmark_transformer
from facepaint.runtime.training.mixer_train import MixerTrainConfig, train_background_mixer


def train_transformer_and_mixer(data: Path, out: Path, steps: int | None = None, resume: bool = False,
                                device: str = "cpu", validate: Path | None = None,
                                cache_config: ClipCacheConfig | None = None) -> list[Path]:
    """Train both stages on the ``*.mp4`` clips in ``data``.

    Args:
        data: Folder of talking-head clips (one person per clip, still camera).
        out: Output folder: ``cache/``, ``runs/lmt``, ``runs/mixer`` and the final weights.
        steps: Transformer steps (the mixer gets a quarter); None for the defaults.
        resume: Continue the runs in ``out``.
        device: ``cpu`` or ``cuda``.
        validate: Optional folder of validation clips (logged with the transformer's metrics).
        cache_config: How the clips are sampled into the cache (None: the defaults).

    Returns:
        The two weights files in ``out``.

    Raises:
        InputError: If ``data`` holds no clips.
        ConfigError: If ``out`` holds runs with other settings, or runs and ``resume`` is False.
    """
    cache = out / "cache"
    cache_config = cache_config or ClipCacheConfig()
    build_clip_cache(data, cache / "train", cache_config)
    val = None
    if validate is not None:
        val = cache / "validate"
        build_clip_cache(validate, val, cache_config)
    lmt_cfg, mix_cfg = LmtTrainConfig(device=device), MixerTrainConfig(device=device)
    if steps is not None:
        lmt_cfg = LmtTrainConfig(steps=steps, au_steps=max(1, steps // 3), device=device)
        mix_cfg = MixerTrainConfig(steps=max(1, steps // 4), device=device)
    paths = [*train_landmark_transformer(cache / "train", out / "runs" / "lmt", lmt_cfg, resume, val),
             train_background_mixer(cache / "train", out / "runs" / "mixer", mix_cfg, resume)]
    final = []
    (out / "weights").mkdir(parents=True, exist_ok=True)
    for path in paths:
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(path.with_suffix(suffix), out / "weights" / path.with_suffix(suffix).name)
        final.append(out / "weights" / path.name)
    return final
