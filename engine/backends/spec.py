"""The JSON config that sits beside a ``.safetensors`` file and says how to rebuild the module.

``model.safetensors`` holds the weights, ``model.json`` holds::

    {"architecture": "backward_warp", "config": {...},
     "inputs": [{"name": "image", "shape": [1, 3, 64, 64], "dtype": "float32",
                 "axes": ["batch", null, "src_h", "src_w"]}, ...],
     "outputs": ["warped"], "weights_sha256": "…", "training": {...}}

``weights_sha256`` (optional; written by ``save_weights``) is checked before the weights are
read, so a damaged or swapped file is refused; ``training`` (optional) says how the weights were
made. ``shape`` is an example shape (used to export and check); ``axes`` names the dynamic axes
(``null`` for a static one); axes with the same name must have the same size.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError, ModelError
from facepaint.engine.files import sha256_file

if TYPE_CHECKING:
    from torch import nn

DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")
_SPEC_KEYS = ("architecture", "config", "inputs", "outputs")
_OPTIONAL_KEYS = ("weights_sha256", "training")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One named model input.

    Attributes:
        name: Input name (also the ONNX/TensorRT tensor name).
        shape: Example shape.
        dtype: Element type name (see ``DTYPES``).
        axes: Per-axis dynamic name or ``None`` for a static axis; empty means all static.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    axes: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "axes", tuple(self.axes))
        if self.dtype not in DTYPES:
            raise ConfigError(f"input '{self.name}': dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")
        if self.axes and len(self.axes) != len(self.shape):
            raise ConfigError(f"input '{self.name}': {len(self.axes)} axes names for a rank-{len(self.shape)} shape")

    def dynamic_axes(self) -> dict[int, str]:
        """Return ``{axis: name}`` for the dynamic axes."""
        return {i: name for i, name in enumerate(self.axes) if name}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What ``model.json`` declares.

    Attributes:
        architecture: Key in the backend's architecture registry.
        config: Keyword arguments of the architecture's factory.
        inputs: Model inputs, in call order.
        outputs: Output names, in return order.
        weights_sha256: sha256 of the ``.safetensors`` file, or None (not checked).
        training: How the weights were trained (data, steps, hardware); free-form.
    """

    architecture: str
    config: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    weights_sha256: str | None = None
    training: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready mapping (the inverse of ``parse_spec``)."""
        return {
            "architecture": self.architecture,
            "config": dict(self.config),
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "axes": list(t.axes)}
                       for t in self.inputs],
            "outputs": list(self.outputs),
            **({"weights_sha256": self.weights_sha256} if self.weights_sha256 else {}),
            **({"training": dict(self.training)} if self.training else {}),
        }


def spec_path(weights: str | Path) -> Path:
    """Return the JSON config path beside a ``.safetensors`` file."""
    return Path(weights).with_suffix(".json")


def parse_spec(data: Any, where: str = "model.json") -> ModelSpec:
    """Build a ``ModelSpec`` from a decoded JSON mapping, refusing unknown or missing keys.

    Raises:
        ModelError: If the mapping is malformed.
    """
    if not isinstance(data, dict):
        raise ModelError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SPEC_KEYS) - set(_OPTIONAL_KEYS))
    missing = [k for k in _SPEC_KEYS if k not in data]
    if unknown or missing:
        raise ModelError(f"{where}: keys must be {', '.join(_SPEC_KEYS)} (optional: {', '.join(_OPTIONAL_KEYS)}); "
                         f"unknown {unknown}, missing {missing}")
    if not isinstance(data["config"], dict) or not isinstance(data["inputs"], list):
        raise ModelError(f"{where}: 'config' must be an object and 'inputs' a list")
    sha, training = data.get("weights_sha256"), data.get("training", {})
    if (sha is not None and not isinstance(sha, str)) or not isinstance(training, dict):
        raise ModelError(f"{where}: 'weights_sha256' must be a string and 'training' an object")
    try:
        inputs = tuple(build_config(TensorSpec, t, where=f"inputs[{i}].") for i, t in enumerate(data["inputs"]))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: {exc}") from None
    outputs = tuple(str(o) for o in data["outputs"])
    if not inputs or not outputs:
        raise ModelError(f"{where}: a model needs at least one input and one output")
    return ModelSpec(str(data["architecture"]), dict(data["config"]), inputs, outputs, sha, dict(training))


def read_spec(weights: str | Path) -> ModelSpec:
    """Read the JSON config beside ``weights``.

    Raises:
        ModelError: If the file is missing, not JSON, or malformed.
    """
    path = spec_path(weights)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"missing model config '{path}' beside '{weights}' "
                         "(keys: architecture, config, inputs, outputs)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model config '{path}': {exc}") from None
    return parse_spec(data, where=str(path))


def write_spec(weights: str | Path, spec: ModelSpec) -> Path:
    """Write ``spec`` as the JSON config beside ``weights`` (atomically) and return its path."""
    path = spec_path(weights)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def save_weights(module: nn.Module, path: str | Path, spec: ModelSpec, *, half: bool = False) -> Path:
    """Save ``module``'s state dict as safetensors and ``spec`` (with the file's sha256) beside it.

    Args:
        module: The module; its architecture must be registered under ``spec.architecture``.
        path: Output ``.safetensors`` path (written atomically).
        spec: Architecture, config, inputs, outputs and training notes.
        half: Store floating-point tensors as fp16 (what ships; loaders compute in fp32 or fp16).

    Returns:
        The ``.safetensors`` path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {}
    for key, value in module.state_dict().items():
        value = value.detach().cpu()
        state[key] = (value.half() if half and value.is_floating_point() else value).contiguous()
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # safetensors writes 0600; an installed model must be readable by every user
    tmp.replace(path)
    write_spec(path, dataclasses.replace(spec, weights_sha256=sha256_file(path)))
    return path


def check_weights_sha256(weights: str | Path, expected: str | None) -> None:
    """Refuse a weights file whose sha256 is not ``expected`` (None: nothing to check).

    Raises:
        ModelError: Naming both hashes' first digits.
    """
    if expected is None:
        return
    actual = sha256_file(weights)
    if actual != expected:
        raise ModelError(f"weights '{weights}' have sha256 {actual[:16]}…, expected {expected[:16]}…; the file is "
                         "damaged or not the one its JSON describes: reinstall facepaint-live or retrain")
