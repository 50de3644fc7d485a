"""Weights files of the neural stages: fp16 safetensors + a JSON description, checked by sha256.

``<name>.safetensors`` holds one or more modules under key prefixes (``transformer.``,
``au_regressor.``); ``<name>.json`` beside it says how to rebuild each part and carries the
weights' sha256 and how they were trained::

    {"parts": {"transformer": {"hidden": 256, "layers": 3}, ...},
     "weights_sha256": "…", "training": {...}}

Weights that ship inside the package are also checked against ``SHIPPED_SHA256`` here, so a file
swapped or damaged in an install is refused even when its JSON was edited to match.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from facepaint.engine.errors import ModelError
from facepaint.engine.files import sha256_file

M = TypeVar("M", bound=nn.Module)

SHIPPED_SHA256: dict[str, str] = {
    "landmark_transformer.safetensors": "95f76c9e5f95e575ad7504393786b02c96c457d48397df8740423f80481d11fc",
    "background_mixer.safetensors": "76e26bfc98bcdb451262018611971ee355fc2dd972d94817eb01390f1670f9e5",
}


def shipped_path(name: str) -> Path:
    """Path of a weights file shipped in ``facepaint.engine.neural/weights``.

    Raises:
        ModelError: If ``name`` is not a shipped file or is missing from the install.
    """
    if name not in SHIPPED_SHA256:
        raise ModelError(f"no shipped weights '{name}'; shipped: {', '.join(sorted(SHIPPED_SHA256))}")
    path = Path(str(resources.files("facepaint.engine.neural").joinpath("weights").joinpath(name)))
    if not path.is_file():
        raise ModelError(f"shipped weights {path} are missing from this install; reinstall facepaint-live")
    return path


def weights_path(folder: str | Path | None, name: str) -> Path:
    """``<folder>/<name>``, or the shipped file ``name`` when ``folder`` is None.

    Raises:
        ModelError: If the file is not there.
    """
    if folder is None:
        return shipped_path(name)
    path = Path(folder) / name
    if not path.is_file():
        raise ModelError(f"no {name} in {folder}; train it with `facepaint-live train --out {folder}` "
                         "or leave out --weights to use the shipped weights")
    return path


def save_weights(path: str | Path, parts: dict[str, nn.Module], configs: dict[str, dict[str, Any]],
                 training: dict[str, Any], half: bool = True) -> Path:
    """Write ``parts`` (fp16 unless ``half`` is False) and the JSON beside them; returns the JSON path."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {}
    for prefix, module in parts.items():
        for key, value in module.state_dict().items():
            value = value.detach().cpu()
            state[f"{prefix}.{key}"] = (value.half() if half and value.is_floating_point() else value).contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    meta = {"parts": configs, "weights_sha256": sha256_file(path), "training": training}
    js = path.with_suffix(".json")
    js.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return js


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(fp32 state, JSON meta) of a weights file after its sha256 check.

    Raises:
        ModelError: On a missing or unreadable file, or a hash that differs from the JSON's (or,
            for shipped weights, from ``SHIPPED_SHA256``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    js = path.with_suffix(".json")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"missing '{js}' beside '{path}' (written by `facepaint-live train`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read '{js}': {exc}") from None
    if not path.is_file():
        raise ModelError(f"weights file '{path}' not found")
    actual = sha256_file(path)
    expected = SHIPPED_SHA256.get(path.name) if _is_shipped(path) else meta.get("weights_sha256")
    if actual != expected:
        raise ModelError(f"weights '{path}' have sha256 {actual[:16]}…, expected {str(expected)[:16]}…; "
                         "the file is damaged or not the one its config describes: reinstall or retrain")
    try:
        state = load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"cannot read weights '{path}': {exc}") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, meta


def load_module(path: str | Path, cls: type[M], prefix: str) -> M:
    """Rebuild part ``prefix`` of a weights file as ``cls`` (fp32, eval mode, strict keys).

    Raises:
        ModelError: See ``read_weights``; also when the part is absent or does not fit ``cls``.
    """
    state, meta = read_weights(path)
    name = prefix.rstrip(".")
    if name not in meta.get("parts", {}):
        raise ModelError(f"weights '{path}' hold no '{name}' part; they hold {sorted(meta.get('parts', {}))}")
    try:
        module = cls(**meta["parts"][name])
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    except (TypeError, RuntimeError) as exc:
        raise ModelError(f"weights '{path}' do not fit {cls.__name__}: {exc}") from None
    return module.eval()


def _is_shipped(path: Path) -> bool:
    if path.name not in SHIPPED_SHA256:
        return False
    try:
        return path.resolve() == shipped_path(path.name).resolve()
    except ModelError:
        return False
