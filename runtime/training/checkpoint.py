"""Resumable checkpoints without pickle: every tensor in one safetensors file, the rest in JSON.

Adam's state is flattened to ``opt_g.<param index>.<key>`` tensors; its hyper-parameters, the step,
the numpy RNG state and the run's config hash go to ``state.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from facepaint.engine.errors import ConfigError

STATE_FILE = "state.safetensors"
META_FILE = "state.json"


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = opt.state_dict()
    tensors = {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def _restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                       groups: list[dict], device: torch.device) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        head, _, rest = name.partition(".")
        if head == prefix:
            index, key = rest.split(".", 1)
            # Adam keeps 'step' on the CPU; the moments live with the parameters.
            state.setdefault(int(index), {})[key] = value if key == "step" else value.to(device)
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_state(folder: Path, trainer: Any) -> None:
    """Write the trainer's full state into ``folder`` (atomically per file)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"gen.{k}": v.detach().cpu().contiguous() for k, v in trainer.gen.state_dict().items()}
    opt_g, groups_g = _flatten_optimizer("opt_g", trainer.opt_g)
    tensors.update(opt_g)
    meta: dict[str, Any] = {"step": trainer.step, "config_hash": trainer.hash, "groups_g": groups_g,
                            "numpy_rng": trainer.rng.bit_generator.state}
    if trainer.disc is not None:
        tensors.update({f"disc.{k}": v.detach().cpu().contiguous() for k, v in trainer.disc.state_dict().items()})
        opt_d, meta["groups_d"] = _flatten_optimizer("opt_d", trainer.opt_d)
        tensors.update(opt_d)
    tensors["torch_rng"] = torch.get_rng_state()
    tmp = folder / (STATE_FILE + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(folder / STATE_FILE)
    (folder / (META_FILE + ".tmp")).write_text(json.dumps(meta))
    (folder / (META_FILE + ".tmp")).replace(folder / META_FILE)


def load_state(folder: Path, trainer: Any) -> bool:
    """Restore the trainer from ``folder``; False when there is no checkpoint.

    Raises:
        ConfigError: When the checkpoint was made with other settings.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / STATE_FILE).is_file() or not (folder / META_FILE).is_file():
        return False
    meta = json.loads((folder / META_FILE).read_text())
    if meta["config_hash"] != trainer.hash:
        raise ConfigError(f"the checkpoint in {folder} was made with other settings (config hash "
                          f"{meta['config_hash'][:12]} vs {trainer.hash[:12]}); resume with the same settings")
    tensors = load_file(str(folder / STATE_FILE))
    dev = trainer.device
    trainer.gen.load_state_dict({k[4:]: v.to(dev) for k, v in tensors.items() if k.startswith("gen.")})
    _restore_optimizer("opt_g", trainer.opt_g, tensors, meta["groups_g"], dev)
    if trainer.disc is not None:
        trainer.disc.load_state_dict({k[5:]: v.to(dev) for k, v in tensors.items() if k.startswith("disc.")})
        _restore_optimizer("opt_d", trainer.opt_d, tensors, meta["groups_d"], dev)
    torch.set_rng_state(tensors["torch_rng"])
    trainer.rng.bit_generator.state = meta["numpy_rng"]
    trainer.step = int(meta["step"])
    return True
