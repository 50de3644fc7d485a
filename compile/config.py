"""``CompileConfig``: how models are exported and engines built."""

from __future__ import annotations

import dataclasses

from facepaint.engine.backends.base import PRECISIONS
from facepaint.engine.backends.provenance import ShapeProfile, parse_profile
from facepaint.engine.errors import ConfigError

# GridSample needs opset >= 16. The dynamo exporter implements opset 18 natively and reaches lower
# opsets only through a version converter, so 18 is the default.
MIN_OPSET = 16


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    """Options of the exporters (``compile --format``, the backend table's ``exporter``).

    Attributes:
        precision: Engine precision, ``fp16`` or ``fp32``.
        allow_fp32: Build fp32 when fp16 is asked for and the GPU has no fast fp16, instead of failing.
        opset: ONNX opset (>= 16 for GridSample).
        atol: Largest accepted |onnxruntime - torch| when checking an export.
        workspace_gb: TensorRT builder workspace limit in GiB.
        profiles: Optimization profiles (``ShapeProfile`` or ``NAME=MIN:OPT:MAX`` strings).
    """

    precision: str = "fp16"
    allow_fp32: bool = False
    opset: int = 18
    atol: float = 1e-4
    workspace_gb: float = 4.0
    profiles: tuple[ShapeProfile | str, ...] = ()

    @property
    def shape_profiles(self) -> tuple[ShapeProfile, ...]:
        """``profiles`` parsed (strings are parsed at construction; this narrows the type)."""
        return tuple(p for p in self.profiles if isinstance(p, ShapeProfile))

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"compile.precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.opset < MIN_OPSET:
            raise ConfigError(f"compile.opset must be >= {MIN_OPSET} (GridSample), got {self.opset}")
        if self.atol <= 0 or self.workspace_gb <= 0:
            raise ConfigError(f"compile.atol and compile.workspace_gb must be > 0, "
                              f"got {self.atol}, {self.workspace_gb}")
        profiles = tuple(parse_profile(p) if isinstance(p, str) else p for p in self.profiles)
        object.__setattr__(self, "profiles", profiles)
