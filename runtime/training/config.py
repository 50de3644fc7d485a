"""Training settings: one frozen dataclass for the run and one per model, from a TOML file and flags.

A TOML file (``facepaint-live train --config train.toml``) holds the run's keys at the top level
and each model's settings in its table; flags win over the file::

    data = "clips/"
    out = "weights/"
    models = ["generator", "mixer"]
    steps = 2000                      # bounds every model (leave out: each model's own default)

    [cache]                           # CacheSettings
    max_frames = 150

    [generator]                       # GeneratorTrainConfig
    perceptual = 0.0

Unknown keys and wrong types are refused with a "did you mean", as the product's config does
(``engine.config.build_config``).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError
from facepaint.runtime.training.cache import CacheSettings
from facepaint.runtime.training.models import BY_NAME, MODELS


@dataclass(frozen=True)
class RunConfig:
    """What one ``train`` run does (the TOML file's top level).

    Attributes:
        data: A folder of clips (tracked into ``cache_dir``) or a cache folder.
        out: Output folder: ``runs/<model>`` (checkpoint, metrics, samples) and ``weights/``.
        val: A clip or cache folder whose clips are reported on and never trained on.
        cache_dir: Where the cache of a clip folder is built (None: ``OUT/cache``).
        models: The models to train, in this order.
        steps: Steps of every model (None: each model's ``steps``).
        device: ``cpu`` or ``cuda``.
        threads: torch CPU threads (None: torch's default).
        resume: Continue the runs in ``out`` from their checkpoints.
        cache: How clips are cut into the cache.
    """

    data: str = ""
    out: str = ""
    val: str | None = None
    cache_dir: str | None = None
    models: tuple[str, ...] = tuple(m.name for m in MODELS)
    steps: int | None = None
    device: str = "cpu"
    threads: int | None = None
    resume: bool = False
    cache: CacheSettings = field(default_factory=CacheSettings)

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ValueError("give both --data (clips or a cache) and --out (the output folder)")
        unknown = [m for m in self.models if m not in BY_NAME] or ([] if self.models else ["(none)"])
        if unknown:
            raise ValueError(f"models: unknown model '{unknown[0]}'; known: {', '.join(BY_NAME)}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, not '{self.device}'")
        if (self.steps is not None and self.steps < 1) or (self.threads is not None and self.threads < 1):
            raise ValueError("steps and threads must be >= 1")


@dataclass(frozen=True)
class TrainPlan:
    """A run and the config of each model it trains (``--steps`` already applied).

    Attributes:
        run: The run.
        models: (name, config) per model, in training order.
    """

    run: RunConfig
    models: tuple[tuple[str, Any], ...]


def build_plan(*layers: Mapping[str, Any]) -> TrainPlan:
    """Merge mappings (later layers win, tables merged key by key) into a ``TrainPlan``.

    Raises:
        ConfigError: On an unknown key or table, a wrong type or a value out of range.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer)
    run_keys = {f.name for f in dataclasses.fields(RunConfig)}
    for key in merged:
        if key not in run_keys and key not in BY_NAME:
            close = difflib.get_close_matches(key, [*run_keys, *BY_NAME], n=1)
            known = ", ".join(sorted(run_keys | set(BY_NAME)))
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {known}"
            raise ConfigError(f"unknown training config key '{key}'{hint}")
    run = build_config(RunConfig, {k: v for k, v in merged.items() if k in run_keys})
    configs: dict[str, Any] = {}
    # Every table given is checked, also of a model this run leaves out (a typo there is still a typo).
    for name in dict.fromkeys([*run.models, *(k for k in merged if k in BY_NAME)]):
        table = merged.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"training config '{name}' must be a table of {name} settings, not {table!r}")
        if run.steps is not None:
            table = {**table, "steps": run.steps}
        configs[name] = build_config(BY_NAME[name].config, table, where=f"{name}.")
    return TrainPlan(run, tuple((name, configs[name]) for name in run.models))


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping):
            into[key] = dict(into[key]) if isinstance(into.get(key), dict) else {}
            _merge(into[key], value)
        else:
            into[key] = value
