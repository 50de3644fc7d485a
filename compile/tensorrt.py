"""Build TensorRT engines from ONNX with TensorRT 10's builder API, with a provenance header.

fp16 is built only where ``builder.platform_has_fast_fp16``; elsewhere the build fails unless the
caller allowed fp32, and the header records the precision actually built (never a silent
fallback, unlike ultralytics' ``half = builder.platform_has_fast_fp16 and half``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facepaint.compile.config import CompileConfig
from facepaint.engine.backends.provenance import (
    EngineHeader,
    ShapeProfile,
    write_engine_file,
)
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError
from facepaint.engine.files import sha256_file


def choose_precision(precision: str, has_fast_fp16: bool, allow_fp32: bool) -> str:
    """Return the precision to build.

    Raises:
        BackendUnavailable: If fp16 is asked for, the GPU lacks fast fp16 and fp32 is not allowed.
    """
    if precision == "fp32" or has_fast_fp16:
        return precision
    if allow_fp32:
        return "fp32"
    raise BackendUnavailable("fp16 asked for, but this GPU has no fast fp16 (builder.platform_has_fast_fp16 "
                             "is False); build with --precision fp32, or pass --allow-fp32")


def _has_fast_fp16(builder: Any) -> bool:
    """``builder.platform_has_fast_fp16``, deprecated in late TensorRT 10 releases.

    It was deprecated because every GPU TensorRT 10 supports (Turing and newer) has fast fp16, so a
    release that drops the property implies True.
    """
    return bool(getattr(builder, "platform_has_fast_fp16", True))


def _parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """Parse ``onnx_path`` into a new network definition; return ``(network, parser)``.

    The parser is returned because the network refers to weights it owns: keep both alive until
    the engine is built.

    Raises:
        ModelError: With the parser's errors.
    """
    # TensorRT 10 networks are always explicit-batch; the creation flag is gone.
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT's ONNX parser rejects '{onnx_path}': {errors}")
    return network, parser


def _add_profile(builder: Any, network: Any, config: Any, profiles: tuple[ShapeProfile, ...]) -> None:
    """Add one optimization profile; every dynamic input needs an entry.

    Raises:
        ConfigError: If a profile names an unknown input or a dynamic input has none.
    """
    by_name = {p.name: p for p in profiles}
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    unknown = sorted(set(by_name) - set(inputs))
    missing = sorted(n for n, shape in inputs.items() if -1 in shape and n not in by_name)
    if unknown or missing:
        raise ConfigError(f"profiles name unknown inputs {unknown} / lack dynamic inputs {missing}; "
                          f"inputs are {inputs} (pass --profile NAME=MIN:OPT:MAX)")
    if not profiles:
        return
    profile = builder.create_optimization_profile()
    for p in profiles:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)


def _attach_timing_cache(config: Any, path: Path | None) -> Any:
    """Create the builder's timing cache from ``path`` (empty when there is none) and attach it.

    A cache from another TensorRT or GPU is not merged (``ignore_mismatch=False``): the builder
    then times the layers again instead of trusting foreign timings.
    """
    data = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def build_engine(onnx_path: str | Path, out_path: str | Path, *, precision: str = "fp16",
                 profiles: tuple[ShapeProfile, ...] = (), allow_fp32: bool = False,
                 workspace_gb: float = 4.0, device: str = "cuda", timing_cache: Path | None = None) -> EngineHeader:
    """Build a serialized TensorRT engine from ONNX and write it with its provenance header.

    Args:
        onnx_path: Source ONNX model.
        out_path: Output ``.engine`` path.
        precision: ``fp16`` or ``fp32``.
        profiles: Optimization profile per dynamic input.
        allow_fp32: Build fp32 where fp16 is not fast on this GPU instead of failing.
        workspace_gb: Builder workspace limit in GiB.
        device: CUDA device the engine is built for.
        timing_cache: File of layer timings read before the build (when it exists) and written
            after it, so rebuilding a model, or building its sibling models, skips the profiling
            already done on this GPU and TensorRT version.

    Returns:
        The header written before the engine.

    Raises:
        BackendUnavailable: Without TensorRT, CUDA or (unless allowed) fast fp16.
        ConfigError: If the profiles do not fit the network's inputs.
        ModelError: If parsing or building fails.
    """
    import torch

    from facepaint.engine.backends.tensorrt import cuda_identity, import_tensorrt

    trt = import_tensorrt()
    gpu_name, capability = cuda_identity(torch.device(device))
    onnx_path = Path(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    with torch.cuda.device(torch.device(device)):
        builder = trt.Builder(logger)
        network, _parser = _parse_onnx(trt, builder, logger, onnx_path)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
        built = choose_precision(precision, _has_fast_fp16(builder), allow_fp32)
        if built == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        _add_profile(builder, network, config, profiles)
        cache = _attach_timing_cache(config, timing_cache)
        serialized = builder.build_serialized_network(network, config)
        if timing_cache is not None and serialized is not None:
            timing_cache.write_bytes(bytes(cache.serialize()))
    if serialized is None:
        raise ModelError(f"TensorRT {trt.__version__} failed to build an engine from '{onnx_path}' (see its log)")
    header = EngineHeader(tensorrt=trt.__version__, gpu_name=gpu_name, compute_capability=capability,
                          precision=built, profiles=tuple(profiles), source=str(onnx_path.resolve()),
                          source_sha256=sha256_file(onnx_path))
    write_engine_file(out_path, header, bytes(serialized))
    return header


def export_engine(source: str | Path, out_path: str | Path, config: CompileConfig | None = None) -> Path:
    """``compile --format tensorrt``'s last step: ``model.onnx`` to ``model.engine`` (see ``build_engine``)."""
    config = config or CompileConfig()
    build_engine(source, out_path, precision=config.precision, profiles=config.shape_profiles,
                 allow_fp32=config.allow_fp32, workspace_gb=config.workspace_gb,
                 timing_cache=Path(out_path).parent / "timing.cache")
    return Path(out_path)
