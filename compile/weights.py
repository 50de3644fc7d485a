"""Writer of the ``torch`` format: ``model.safetensors`` plus ``model.json``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facepaint.engine.backends.spec import ModelSpec, write_spec

if TYPE_CHECKING:
    from torch import nn


def save_weights(module: nn.Module, path: str | Path, spec: ModelSpec) -> Path:
    """Save ``module``'s state dict as safetensors and ``spec`` as the JSON config beside it.

    Args:
        module: The module; its architecture must be registered under ``spec.architecture``.
        path: Output ``.safetensors`` path.
        spec: Architecture, config, inputs and outputs.

    Returns:
        The ``.safetensors`` path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path))
    write_spec(path, spec)
    return path
