"""Engine cache: one engine per (source hash, GPU, TensorRT version, precision, profiles).

The folder is always given explicitly (``CompileConfig.cache_dir``, absolute): the cache never
lives beside the source tree or in the current directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from facepaint.compile.config import CompileConfig
from facepaint.engine.backends.provenance import ShapeProfile, sha256_file
from facepaint.engine.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class BuildTarget:
    """The machine an engine is built for.

    Attributes:
        tensorrt: TensorRT version.
        gpu_name: GPU model.
        compute_capability: ``"major.minor"``.
    """

    tensorrt: str
    gpu_name: str
    compute_capability: str


def current_target(device: str = "cuda") -> BuildTarget:
    """Return this machine's TensorRT version and GPU.

    Raises:
        BackendUnavailable: Without TensorRT or CUDA.
    """
    import torch

    from facepaint.engine.backends.tensorrt import cuda_identity, import_tensorrt

    trt = import_tensorrt()
    gpu_name, capability = cuda_identity(torch.device(device))
    return BuildTarget(trt.__version__, gpu_name, capability)


def cache_key(source_sha256: str, target: BuildTarget, precision: str, profiles: tuple[ShapeProfile, ...]) -> str:
    """Return a short stable hex key of everything an engine depends on."""
    fields = {"source": source_sha256, "target": dataclasses.asdict(target), "precision": precision,
              "profiles": [dataclasses.asdict(p) for p in profiles]}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class EngineCache:
    """A folder of built engines named ``<onnx stem>-<key>.engine``."""

    def __init__(self, root: str | Path) -> None:
        """Use ``root`` (absolute; created on first build).

        Raises:
            ConfigError: If ``root`` is relative.
        """
        root = Path(root).expanduser()
        if not root.is_absolute():
            raise ConfigError(f"engine cache folder must be absolute, got '{root}'")
        self.root = root

    @classmethod
    def from_config(cls, config: CompileConfig) -> EngineCache:
        """Build the cache named by ``config.cache_dir``.

        Raises:
            ConfigError: If ``cache_dir`` is not set.
        """
        if config.cache_dir is None:
            raise ConfigError("compile.cache_dir is not set; give an absolute folder for built engines")
        return cls(config.cache_dir)

    def path_for(self, onnx_path: str | Path, target: BuildTarget, config: CompileConfig) -> Path:
        """Return where the engine for these inputs lives (whether or not it exists yet)."""
        key = cache_key(sha256_file(onnx_path), target, config.precision, config.profiles)
        return self.root / f"{Path(onnx_path).stem}-{key}.engine"

    def get_or_build(self, onnx_path: str | Path, config: CompileConfig, target: BuildTarget | None = None,
                     build: Callable[[Path, Path, CompileConfig], Path] | None = None) -> Path:
        """Return the cached engine for ``onnx_path``, building it on a miss.

        Args:
            onnx_path: Source ONNX model.
            config: Precision and profiles (part of the key).
            target: Machine identity; this machine's if omitted.
            build: ``(onnx, out, config) -> Path``; ``facepaint.compile.tensorrt.export_engine`` if omitted.

        Returns:
            The engine path.
        """
        if build is None:
            from facepaint.compile.tensorrt import export_engine as build
        path = self.path_for(onnx_path, target or current_target(), config)
        if not path.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            build(Path(onnx_path), path, config)
        return path
