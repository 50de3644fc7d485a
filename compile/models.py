"""Compile the neural stages' models into a folder the engine runs with ``--weights DIR --backend B``.

``compile_models`` copies each model's ``STEM.safetensors`` + ``STEM.json`` (checked) into the
output folder, because the stages read their configuration and constants from them whichever
backend runs the network, and writes ``STEM.onnx`` (and ``STEM.engine`` for TensorRT, built from
that ONNX) beside them. With ``verify`` each ONNX file is run by onnxruntime against torch on the
same inputs and the largest difference is reported and held to ``config.atol``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from facepaint.compile.config import CompileConfig
from facepaint.engine.backends.base import BACKEND_TABLE
from facepaint.engine.backends.provenance import ShapeProfile
from facepaint.engine.backends.spec import ModelSpec, read_spec
from facepaint.engine.errors import ConfigError
from facepaint.engine.neural.model_files import STAGE_MODELS, weights_file

# ``compile --format``'s choices: the exporters of the backend table, once each.
COMPILED_FORMATS = tuple(dict.fromkeys(row.exporter for row in BACKEND_TABLE if row.exporter))


@dataclasses.dataclass(frozen=True)
class Compiled:
    """One compiled model.

    Attributes:
        stem: Model name (``face_generator``...).
        path: The file written (``.onnx`` or ``.engine``).
        seconds: Wall time of the export (and build).
        max_abs_diff: ``verify`` only: largest |onnxruntime - torch| over the outputs, else None.
    """

    stem: str
    path: Path
    seconds: float
    max_abs_diff: float | None = None

    def line(self) -> str:
        """One line for the command's report."""
        diff = "" if self.max_abs_diff is None else f", max |onnxruntime - torch| {self.max_abs_diff:.2e}"
        return f"{self.stem}: {self.path} ({self.seconds:.1f} s{diff})"


def default_profiles(spec: ModelSpec) -> tuple[ShapeProfile, ...]:
    """A TensorRT profile per dynamic input fixed at its example shape (batch 1: one frame at a time)."""
    return tuple(ShapeProfile(t.name, t.shape, t.shape, t.shape) for t in spec.inputs if t.dynamic_axes())


def compile_models(fmt: str, out: Path, config: CompileConfig, *, weights: str | Path | None = None,
                   verify: bool = False, stems: tuple[str, ...] = STAGE_MODELS) -> list[Compiled]:
    """Compile ``stems`` from ``weights`` (None: the shipped ones) into ``out`` as ``fmt``.

    Raises:
        ConfigError: An unknown format, or ``out`` is the source folder itself.
        ModelError / BackendUnavailable: From the checks, the exporter or the builder.
    """
    check_tools(fmt, verify)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for stem in stems:
        source = weights_file(stem, weights)
        local = out / source.name
        if source.resolve() != local.resolve():
            for suffix in (".safetensors", ".json"):
                shutil.copyfile(source.with_suffix(suffix), local.with_suffix(suffix))
        done.append(compile_one(fmt, local, config, verify=verify))
    return done


def check_tools(fmt: str, verify: bool) -> None:
    """Refuse, before anything is written, a format whose tools are not installed.

    Raises:
        ConfigError: An unknown format.
        BackendUnavailable: Naming the extra that installs what is missing.
    """
    from facepaint.engine.backends.onnx import import_onnxruntime
    from facepaint.engine.errors import BackendUnavailable

    if fmt not in COMPILED_FORMATS:
        raise ConfigError(f"compile --format must be one of {', '.join(COMPILED_FORMATS)}, got '{fmt}'")
    try:
        import onnxscript  # noqa: F401 - the dynamo exporter's dependency, imported lazily by torch
    except ImportError:
        raise BackendUnavailable("ONNX export needs onnxscript; run pip install 'facepaint-live[onnx]'") from None
    if verify:
        import_onnxruntime()
    if fmt == "tensorrt":
        from facepaint.engine.backends.tensorrt import import_tensorrt

        import_tensorrt()


def check_source(fmt: str, source: Path) -> None:
    """Refuse a model file ``fmt`` is not compiled from.

    Raises:
        ConfigError: Naming the suffixes it is compiled from.
    """
    accepted = (".safetensors", ".onnx") if fmt == "tensorrt" else (".safetensors",)
    if source.suffix.lower() not in accepted:
        raise ConfigError(f"{fmt} is compiled from {' or '.join(accepted)} models, got '{source}'")


def compile_one(fmt: str, source: Path, config: CompileConfig, *, verify: bool = False) -> Compiled:
    """Write ``source``'s ``.onnx`` (and ``.engine`` for ``tensorrt``) beside it.

    ``source`` is a ``.safetensors`` model with its JSON; for ``tensorrt`` an ``.onnx`` file
    with that pair beside it (or alone) is accepted too and built directly.
    """
    from facepaint.compile.onnx import export_model

    check_source(fmt, source)
    start = time.perf_counter()
    diff = None
    onnx_path = source.with_suffix(".onnx")
    if source.suffix == ".safetensors":
        result = export_model(source, onnx_path, config, check=verify)
        diff = result.max_abs_diff
    if fmt == "onnx":
        return Compiled(source.stem, onnx_path, time.perf_counter() - start, diff)
    if fmt != "tensorrt":  # a backend table row whose exporter has no code here yet
        raise ConfigError(f"compile --format {fmt} has no exporter in facepaint.compile.models.compile_one")
    from facepaint.compile.tensorrt import export_engine

    if not config.profiles and source.with_suffix(".json").is_file():
        config = dataclasses.replace(config, profiles=default_profiles(read_spec(source)))
    engine = export_engine(onnx_path, source.with_suffix(".engine"), config)
    return Compiled(source.stem, engine, time.perf_counter() - start, diff)
