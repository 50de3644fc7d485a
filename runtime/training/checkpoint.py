"""The one run folder and checkpoint format of every trained model (no pickle anywhere).

A model's run folder (``OUT/runs/<model>``) holds::

    config.json                     {"model": name, "config": {...}, "hash": config_hash(config)}
    checkpoint/state.safetensors    every net (``model.<net>.<key>``), every Adam state
                                    (``opt.<optimizer>.<param index>.<key>``)
    checkpoint/state.json           step, the optimizers' param groups, the config hash
    metrics.jsonl                   one JSON line per logged step
    samples/step_XXXXXXX.png        the model's sample grid, when it draws one

A resume refuses a checkpoint whose hash differs from the run's: settings that change what is
learnt per step are in the hash; ``RESUMABLE_KEYS`` (how long, how often to log) are not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facepaint.engine.errors import ConfigError

STATE_FILE = "state.safetensors"
META_FILE = "state.json"
# Settings that may change when a run resumes: they do not change what is learnt per step.
RESUMABLE_KEYS = ("steps", "log_every", "save_every")


def config_hash(config: Any) -> str:
    """sha256 of a training config dataclass, without ``RESUMABLE_KEYS``."""
    data = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_run(folder: Path, model: str, config: Any, resume: bool) -> str:
    """The config hash of a run of ``model`` in ``folder``, after checking that it may start there.

    Raises:
        ConfigError: If ``folder`` holds a run and ``resume`` is False, or a run with other
            settings when resuming.
    """
    path = folder / "config.json"
    digest = config_hash(config)
    if path.is_file():
        if not resume:
            raise ConfigError(f"{folder} already holds a {model} run; add --resume to continue it "
                              "or pick another --out")
        if json.loads(path.read_text(encoding="utf-8")).get("hash") != digest:
            raise ConfigError(f"{folder} holds a {model} run with other settings; resume with the same settings "
                              "(the file and flags it was started with) or pick another --out")
    return digest


def open_run(folder: Path, model: str, config: Any, resume: bool) -> str:
    """Create or reopen a model's run folder (``check_run`` first); returns the config hash."""
    digest = check_run(folder, model, config, resume)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "config.json", json.dumps({"model": model, "config": dataclasses.asdict(config), "hash": digest},
                                              indent=1))
    return digest


def save_state(folder: Path, step: int, digest: str, nets: Mapping[str, nn.Module],
               optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
    """Write every net and optimizer state into ``folder`` (each file atomically; the loop seeds
    every step's draws from (seed, step), so no RNG state is needed)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{name}.{k}": v.detach().cpu().contiguous()
               for name, net in nets.items() for k, v in net.state_dict().items()}
    groups = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for index, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"opt.{name}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tmp = folder / (STATE_FILE + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(folder / STATE_FILE)
    _write(folder / META_FILE, json.dumps({"step": step, "config_hash": digest, "param_groups": groups}))


def load_state(folder: Path, digest: str, nets: Mapping[str, nn.Module],
               optimizers: Mapping[str, torch.optim.Optimizer], device: torch.device) -> int | None:
    """Restore what ``save_state`` wrote; returns its step, or None when ``folder`` holds none.

    Raises:
        ConfigError: When the checkpoint was made with other settings.
    """
    from safetensors.torch import load_file

    if not (folder / STATE_FILE).is_file() or not (folder / META_FILE).is_file():
        return None
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if meta["config_hash"] != digest:
        raise ConfigError(f"the checkpoint in {folder} was made with other settings; resume with the same settings")
    tensors = load_file(str(folder / STATE_FILE))
    for name, net in nets.items():
        prefix = f"model.{name}."
        net.load_state_dict({k[len(prefix):]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"opt.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix):].split(".", 1)
                # Adam keeps 'step' on the CPU; the moments live with the parameters.
                state.setdefault(int(index), {})[field] = value if field == "step" else value.to(device)
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    return int(meta["step"])


class MetricsLog:
    """Appends one JSON line per call to ``<folder>/metrics.jsonl`` (wall time since the log opened)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "metrics.jsonl"
        self._t0 = time.perf_counter()

    def keep_until(self, step: int) -> None:
        """Drop the lines after ``step``: a resumed run logs again what a stopped one logged after
        its last checkpoint, and one line per step stays."""
        if self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            _write(self.path, "".join(line + "\n" for line in lines if json.loads(line)["step"] <= step))

    def __call__(self, step: int, values: Mapping[str, float]) -> dict[str, float]:
        """Log ``values`` at ``step``; returns the row written."""
        row = {"step": step, "wall_s": round(time.perf_counter() - self._t0, 2),
               **{k: round(float(v), 6) for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        return row


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
