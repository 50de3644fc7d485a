"""The table of trained models, and the run that trains the chosen ones through the one loop.

A new model is one file (see ``loop.py``'s docstring) and one row of ``MODELS``; its settings
are then its TOML table, ``--set <name>.<key>=...`` and ``--models <name>``, and ``--steps``
bounds it with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facepaint.runtime.training import generator, mixer, mouth, transformer
from facepaint.runtime.training.loop import Trainable, TrainData, run


@dataclass(frozen=True)
class ModelEntry:
    """One trained model.

    Attributes:
        name: Its name in ``--models``, its TOML table and its run folder ``OUT/runs/<name>``.
        config: Its frozen config dataclass.
        build: ``build(config, data, device)``: its ``Trainable``.
        check: ``check(config)``: raises ``FacepaintError`` for a requirement the run would miss.
        help: What it is, for ``--help``.
    """

    name: str
    config: type
    build: Callable[[Any, TrainData, torch.device], Trainable]
    check: Callable[[Any], None] | None
    help: str


MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("generator", generator.GeneratorTrainConfig, generator.build, generator.check,
               "the face generator (--reenactor neural)"),
    ModelEntry("transformer", transformer.TransformerTrainConfig, transformer.build, None,
               "the landmark transformer and its AU regressor (--transformer neural)"),
    ModelEntry("mixer", mixer.MixerTrainConfig, mixer.build, None, "the background mixer (--mixer neural)"),
    ModelEntry("mouth", mouth.MouthTrainConfig, mouth.build, mouth.check,
               "the mouth net ([engine.reenactor] mouth_fill = \"neural\")"),
)
BY_NAME = {m.name: m for m in MODELS}


def train_models(models: tuple[tuple[str, Any], ...], data: TrainData, out: Path, device: str, resume: bool,
                 progress: Callable[[str, dict[str, float]], None] | None = None) -> list[Path]:
    """Train each (name, config) of ``models`` in turn in ``OUT/runs/<name>``; returns the weights
    written into ``OUT/weights`` (what ``--weights OUT`` reads).

    Every model is built (its data prepared, its losses' backbones loaded) before the first one
    takes a step, so a model that cannot start stops the run before any training.
    """
    dev = torch.device(device)
    built = []
    for name, config in models:
        torch.manual_seed(config.seed)
        built.append((name, config, BY_NAME[name].build(config, data, dev)))
    paths: list[Path] = []
    for name, config, model in built:
        step = run(name, model, config, out / "runs" / name, resume, progress)
        paths += model.export(out / "weights", {"step": step, "device": device, "cache": str(data.cache)})
    return paths
