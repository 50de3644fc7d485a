"""The one training loop, and what a model plugs into it.

A trained model is ONE file in this package plus ONE row in ``models.MODELS``. The file holds:

* a frozen config dataclass: the model's TOML table ``[<name>]`` (built by
  ``engine.config.build_config``, so unknown keys and wrong types are refused), with at least
  ``steps``, ``seed``, ``log_every`` and ``save_every`` (``--steps`` replaces ``steps``);
* a ``Trainable`` subclass and a ``build(config, data, device) -> Trainable`` function
  (``data`` is a ``TrainData``: the cached clips every model reads, see ``cache.py``);
* optionally ``check(config)``, raising ``ConfigError`` for a requirement the run would miss
  (called before the cache is built or the first step is taken).

The ``Trainable`` gives the loop:

* ``nets``: every network that learns, by name (checkpointed under these names);
* ``optimizers``: by name, stepped in this order; a loss term with an optimizer's name is what
  that optimizer minimises (a step whose terms lack the name leaves that optimizer alone, which
  is how a model trains in phases or starts a discriminator late);
* ``batch(rng, step)``: the step's batch, drawn from ``rng`` = numpy's generator seeded with
  ``(seed, step)`` (torch's is seeded from it too), so a resumed run draws what the
  uninterrupted one would have;
* ``loss(batch, step)``: a dict of scalar tensors; all of them are logged (means over
  ``log_every`` steps) to ``metrics.jsonl``;
* ``lr(name, step)``: the learning rate of optimizer ``name`` at ``step`` (default: constant);
* ``validate()``: figures logged with each metrics line (default: none);
* ``sample()``: an RGB uint8 image saved as ``samples/step_N.png`` at each checkpoint (default: none);
* ``export(folder, training)``: write the fp16 weights ``--weights`` loads; returns the paths;
* ``clip`` (largest gradient norm per net, None: no clipping) and ``amp`` (CUDA mixed precision).

The mouth net (``mouth.py``) is an example: ``MouthTrainConfig``, a ``MouthTrainable`` whose
``batch`` cuts 64 px mouth squares from ``clip.crops`` by ``clip.landmarks``, whose ``loss``
returns its terms and their sum under the optimizer's name, and whose ``export`` calls
``save_model``; and the row ``ModelEntry("mouth", MouthTrainConfig, mouth.build, mouth.check, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facepaint.runtime.training.cache import CachedClip
from facepaint.runtime.training.checkpoint import MetricsLog, load_state, open_run, save_state


@dataclass(frozen=True, eq=False)
class TrainData:
    """What every model trains on.

    Attributes:
        cache: The cache folder (recorded in the weights' training notes).
        clips: Training clips.
        val: Validation clips (never trained on), or None.
    """

    cache: Path
    clips: list[CachedClip]
    val: list[CachedClip] | None = None


class Trainable:
    """A model as the loop sees it (see the module docstring); subclasses set ``nets`` and
    ``optimizers`` and define ``batch``, ``loss`` and ``export``."""

    clip: float | None = None
    amp: bool = False

    def __init__(self, nets: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                 device: torch.device) -> None:
        self.nets = dict(nets)
        self.optimizers = dict(optimizers)
        self.device = device

    def batch(self, rng: np.random.Generator, step: int) -> Any:
        """The batch of ``step``."""
        raise NotImplementedError

    def loss(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Loss terms of ``batch`` (see the module docstring)."""
        raise NotImplementedError

    def lr(self, name: str, step: int) -> float:
        """Learning rate of optimizer ``name`` at ``step``: its initial one."""
        return float(self.optimizers[name].defaults["lr"])

    def validate(self) -> dict[str, float]:
        """Validation figures (none)."""
        return {}

    def sample(self) -> np.ndarray | None:
        """A sample grid (none)."""
        return None

    def export(self, folder: Path, training: dict[str, Any]) -> list[Path]:
        """Write the fp16 weights into ``folder``; returns their paths."""
        raise NotImplementedError


def check_schedule(config: Any) -> None:
    """Refuse a model config whose shared schedule fields (steps, batch, log_every, save_every, lr) cannot run."""
    if min(config.steps, config.batch, config.log_every, config.save_every) < 1 or config.lr <= 0:
        raise ValueError("steps, batch, log_every and save_every must be >= 1 and lr > 0")


def cosine(lr: float, step: int, steps: int) -> float:
    """Cosine decay from ``lr`` to a tenth of it over ``steps``."""
    return lr * (0.1 + 0.45 * (1 + float(np.cos(np.pi * min(step, steps) / max(steps, 1)))))


def run(name: str, model: Trainable, config: Any, folder: Path, resume: bool,
        progress: Callable[[str, dict[str, float]], None] | None = None) -> int:
    """Train ``model`` in run folder ``folder`` until step ``config.steps``; returns the step reached.

    A new run refuses a folder that holds one; ``resume`` continues the one there (with the same
    settings) from its last checkpoint. A resume with more ``steps`` extends the run; a model whose
    learning rate follows a schedule over ``steps`` then follows the new one from there.
    """
    digest = open_run(folder, name, config, resume)
    step, log = 0, MetricsLog(folder)
    if resume:
        step = load_state(folder / "checkpoint", digest, model.nets, model.optimizers, model.device) or 0
        log.keep_until(step)  # a run stopped before its first checkpoint starts again from 0
    scaler = torch.amp.GradScaler("cuda", enabled=model.amp)
    acc: list[dict[str, float]] = []
    while step < config.steps:
        rng = np.random.default_rng([config.seed, step])
        # Torch's draws (noise, dropout) are seeded per step too: a model's run does not depend on
        # what ran before it in the process, and a resume needs no RNG state.
        torch.manual_seed(int(rng.integers(2 ** 63 - 1)))
        terms = model.loss(model.batch(rng, step), step)
        for opt_name, opt in model.optimizers.items():
            if opt_name in terms:
                _optimise(model, opt_name, opt, terms[opt_name], scaler, step)
        scaler.update()
        step += 1
        acc.append({k: float(v.detach()) for k, v in terms.items()})
        if step % config.log_every == 0 or step == config.steps:
            keys = dict.fromkeys(k for a in acc for k in a)  # a phase's terms are logged while it lasts
            row = log(step, {**{k: float(np.mean([a[k] for a in acc if k in a])) for k in keys}, **model.validate()})
            acc = []
            if progress is not None:
                progress(name, row)
        if step % config.save_every == 0 or step == config.steps:
            save_state(folder / "checkpoint", step, digest, model.nets, model.optimizers)
            _save_sample(model, folder / "samples" / f"step_{step:07d}.png")
    return step


def _optimise(model: Trainable, name: str, opt: torch.optim.Optimizer, loss: torch.Tensor,
              scaler: torch.amp.GradScaler, step: int) -> None:
    for group in opt.param_groups:
        group["lr"] = model.lr(name, step)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if model.clip is not None:
        scaler.unscale_(opt)
        params = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, model.clip)
    scaler.step(opt)


def _save_sample(model: Trainable, path: Path) -> None:
    import cv2

    image = model.sample()
    if image is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
