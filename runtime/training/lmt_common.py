"""What the landmark-transformer and mixer training loops share: run folder, checkpoints, metrics.

A run folder holds ``config.json`` (the training settings and their hash), ``checkpoint.safetensors``
+ ``checkpoint.json`` (fp32 weights, Adam moments, step: enough to resume bit-for-bit in
settings), ``metrics.jsonl`` (one JSON object per logged step) and the final fp16 weights.
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

# Settings that may change when a run resumes: they do not change what is learnt per step.
RESUMABLE_KEYS = ("steps", "log_every", "checkpoint_every", "device")


def config_hash(config: Any) -> str:
    """Short sha256 of a settings dataclass, ignoring ``RESUMABLE_KEYS``."""
    data = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def open_run(out: Path, config: Any, resume: bool) -> int:
    """Create or reopen the run folder; returns the step to start from (0 for a new run).

    Raises:
        ConfigError: If ``out`` holds another run and ``resume`` is False, or a run with other
            settings (different hash) when resuming.
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    digest = config_hash(config)
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not resume:
            raise ConfigError(f"{out} already holds a training run; pass --resume to continue it or pick another --out")
        if old.get("hash") != digest:
            raise ConfigError(f"{out} holds a run with other settings (hash {old.get('hash')} vs {digest}); "
                              "resume with the same settings or pick another --out")
    cfg_path.write_text(json.dumps({"config": dataclasses.asdict(config), "hash": digest}, indent=2) + "\n",
                        encoding="utf-8")
    ckpt = out / "checkpoint.json"
    return int(json.loads(ckpt.read_text(encoding="utf-8"))["step"]) if resume and ckpt.exists() else 0


def save_checkpoint(out: Path, step: int, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], extra: dict[str, Any] | None = None) -> None:
    """Write weights and optimizer moments (safetensors) and the step (JSON), each atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"model.{name}.{key}"] = value.detach().cpu().contiguous()
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for idx, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"opt.{name}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tmp = out / "checkpoint.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(out / "checkpoint.safetensors")
    meta = {"step": step, "param_groups": groups, "rng": torch.get_rng_state().tolist(), **(extra or {})}
    tmp = out / "checkpoint.json.tmp"
    tmp.write_text(json.dumps(meta) + "\n", encoding="utf-8")
    tmp.replace(out / "checkpoint.json")


def load_checkpoint(out: Path, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer]) -> dict:
    """Restore what ``save_checkpoint`` wrote; returns the JSON meta."""
    from safetensors.torch import load_file

    tensors = load_file(str(out / "checkpoint.safetensors"))
    meta = json.loads((out / "checkpoint.json").read_text(encoding="utf-8"))
    for name, module in modules.items():
        prefix = f"model.{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    for name, opt in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"opt.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    torch.set_rng_state(torch.tensor(meta["rng"], dtype=torch.uint8))
    return meta


class MetricsLog:
    """Appends one JSON line per call to ``<out>/metrics.jsonl`` (wall time since the log opened)."""

    def __init__(self, out: Path) -> None:
        self.path = out / "metrics.jsonl"
        self._t0 = time.perf_counter()

    def __call__(self, step: int, **values: float) -> None:
        row = {"step": step, "wall_s": round(time.perf_counter() - self._t0, 2),
               **{k: round(float(v), 6) for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
