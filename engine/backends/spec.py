"""The JSON config that sits beside a ``.safetensors`` file and says how to rebuild the module.

``model.safetensors`` holds the weights, ``model.json`` holds::

    {"architecture": "backward_warp", "config": {...},
     "inputs": [{"name": "image", "shape": [1, 3, 64, 64], "dtype": "float32",
                 "axes": ["batch", null, "src_h", "src_w"]}, ...],
     "outputs": ["warped"]}

``shape`` is an example shape (used to export and check); ``axes`` names the dynamic axes (``null``
for a static one); axes with the same name must have the same size.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError, ModelError

DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")
_SPEC_KEYS = ("architecture", "config", "inputs", "outputs")


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
    """

    architecture: str
    config: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready mapping (the inverse of ``parse_spec``)."""
        return {
            "architecture": self.architecture,
            "config": dict(self.config),
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "axes": list(t.axes)}
                       for t in self.inputs],
            "outputs": list(self.outputs),
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
    unknown = sorted(set(data) - set(_SPEC_KEYS))
    missing = [k for k in _SPEC_KEYS if k not in data]
    if unknown or missing:
        raise ModelError(f"{where}: keys must be {', '.join(_SPEC_KEYS)}; unknown {unknown}, missing {missing}")
    if not isinstance(data["config"], dict) or not isinstance(data["inputs"], list):
        raise ModelError(f"{where}: 'config' must be an object and 'inputs' a list")
    try:
        inputs = tuple(build_config(TensorSpec, t, where=f"inputs[{i}].") for i, t in enumerate(data["inputs"]))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: {exc}") from None
    outputs = tuple(str(o) for o in data["outputs"])
    if not inputs or not outputs:
        raise ModelError(f"{where}: a model needs at least one input and one output")
    return ModelSpec(str(data["architecture"]), dict(data["config"]), inputs, outputs)


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
    """Write ``spec`` as the JSON config beside ``weights`` and return its path."""
    path = spec_path(weights)
    path.write_text(json.dumps(spec.to_json(), indent=2) + "\n", encoding="utf-8")
    return path
