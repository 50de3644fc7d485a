"""Export to ONNX with ``torch.onnx.export`` (dynamo exporter) and check it against torch."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facepaint.compile.config import MIN_OPSET, CompileConfig
from facepaint.engine.backends.spec import ModelSpec, read_spec
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclasses.dataclass(frozen=True)
class OnnxExport:
    """Result of one export.

    Attributes:
        path: The written ``.onnx`` file.
        max_abs_diff: Largest |onnxruntime - torch| over all outputs on the example inputs; None
            when the export was not checked.
        export_seconds: Wall time of ``torch.onnx.export``.
    """

    path: Path
    max_abs_diff: float | None
    export_seconds: float


def export_onnx(module: nn.Module, example_inputs: Mapping[str, torch.Tensor], path: str | Path, *,
                output_names: Sequence[str], opset: int = 18,
                dynamic_axes: Mapping[str, Mapping[int, str]] | None = None, atol: float = 1e-4,
                check: bool = True) -> OnnxExport:
    """Export ``module`` to ONNX and (``check``) hold onnxruntime to torch on ``example_inputs``.

    The weights are stored inside the ``.onnx`` file (no ``.onnx.data`` beside it), so the file's
    sha256 in an engine's provenance header covers the weights too; protobuf limits that to 2 GB.

    Args:
        module: The module (exported in eval mode, on the CPU).
        example_inputs: Named inputs in ``forward`` order.
        path: Output ``.onnx`` path.
        output_names: Names of the module's outputs, in order.
        opset: ONNX opset, >= 16 (GridSample).
        dynamic_axes: ``{input: {axis: name}}``; axes sharing a name must have equal sizes.
        atol: Largest accepted absolute difference.
        check: Run the comparison (it needs onnxruntime).

    Returns:
        The path, the measured difference and the export time.

    Raises:
        ConfigError: If ``opset`` is too low.
        BackendUnavailable: If onnxscript or onnxruntime is missing.
        ModelError: If export fails or onnxruntime differs from torch by more than ``atol``.
    """
    import torch

    if opset < MIN_OPSET:
        raise ConfigError(f"opset must be >= {MIN_OPSET} for GridSample, got {opset}")
    module = module.eval().cpu()
    args = tuple(t.detach().cpu() for t in example_inputs.values())
    path = Path(path)
    start = time.perf_counter()
    try:
        with _quiet_exporter():
            torch.onnx.export(module, args, str(path), input_names=list(example_inputs),
                              output_names=list(output_names), opset_version=opset,
                              dynamic_shapes=_dynamic_shapes(example_inputs, dynamic_axes),
                              dynamo=True, verbose=False, external_data=False)
    except ImportError as exc:
        raise BackendUnavailable(f"ONNX export needs onnxscript ({exc}); "
                                 "run pip install 'facepaint-live[onnx]'") from None
    except Exception as exc:  # noqa: BLE001 - the exporter raises many unrelated types
        raise ModelError(f"torch.onnx.export of {type(module).__name__} failed: {exc}") from None
    seconds = time.perf_counter() - start
    if not check:
        return OnnxExport(path, None, seconds)
    diff = compare_with_torch(module, example_inputs, path, output_names)
    if not diff <= atol:
        raise ModelError(f"'{path}' disagrees with torch: max |onnxruntime - torch| = {diff:.3g} > atol {atol:g}")
    return OnnxExport(path, diff, seconds)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hold back the exporter's notes (torchvision ops it skips, deprecations, axis renames): they
    are not about the user's model and bury the command's own report. Errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _dynamic_shapes(inputs: Mapping[str, torch.Tensor],
                    dynamic_axes: Mapping[str, Mapping[int, str]] | None) -> dict | None:
    """Turn ``{input: {axis: name}}`` into torch.export ``Dim``s, one object per name.

    Sharing one ``Dim`` per name tells torch.export that, say, both batch axes are the same size,
    which the dynamo exporter otherwise reports as a violated constraint.
    """
    from torch.export import Dim

    if not dynamic_axes:
        return None
    unknown = sorted(set(dynamic_axes) - set(inputs))
    if unknown:
        raise ConfigError(f"dynamic axes name unknown inputs {unknown}; inputs are {list(inputs)}")
    dims = {name: Dim(name) for axes in dynamic_axes.values() for name in axes.values()}
    return {key: {axis: dims[name] for axis, name in dynamic_axes.get(key, {}).items()} for key in inputs}


def compare_with_torch(module: nn.Module, inputs: Mapping[str, torch.Tensor], path: str | Path,
                       output_names: Sequence[str]) -> float:
    """Return the largest |onnxruntime - torch| over all outputs on ``inputs``."""
    import numpy as np
    import torch

    from facepaint.engine.backends.onnx import import_onnxruntime

    ort = import_onnxruntime()
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(list(output_names), {k: v.detach().cpu().numpy() for k, v in inputs.items()})
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own unrelated types
        raise ModelError(f"onnxruntime cannot run the export '{path}': {str(exc)[:200]}") from None
    with torch.inference_mode():
        want = module(*inputs.values())
    want = want if isinstance(want, (tuple, list)) else (want,)
    if len(want) != len(got):
        raise ModelError(f"torch returns {len(want)} outputs, '{path}' names {len(got)}: {list(output_names)}")
    return max(float(np.max(np.abs(g - w.detach().cpu().numpy()), initial=0.0)) for g, w in zip(got, want, strict=True))


def example_inputs(spec: ModelSpec, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic example inputs of the shapes in ``spec`` (floats uniform in [0, 1))."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    for tensor in spec.inputs:
        dtype = getattr(torch, tensor.dtype)
        if dtype.is_floating_point:
            inputs[tensor.name] = torch.rand(tensor.shape, generator=generator).to(dtype)
        else:
            inputs[tensor.name] = torch.zeros(tensor.shape, dtype=dtype)
    return inputs


def export_model(source: str | Path, out_path: str | Path, config: CompileConfig | None = None, *,
                 check: bool = True) -> OnnxExport:
    """Export a ``.safetensors`` model (with its JSON) to ONNX.

    Args:
        source: ``.safetensors`` file with its JSON config beside it.
        out_path: Output ``.onnx`` path.
        config: Opset and tolerance.
        check: Compare onnxruntime with torch on the spec's example inputs (``config.atol``).

    Returns:
        The path, the difference (None unchecked) and the export time.

    Raises:
        ModelError: If loading, export or the check fails.
    """
    from facepaint.engine.backends.base import BackendOptions
    from facepaint.engine.backends.torch import TorchBackend

    config = config or CompileConfig()
    spec = read_spec(source)
    # fp32 on the CPU: the exported graph is fp32; TensorRT and onnxruntime choose their precision.
    with TorchBackend(BackendOptions(device="cpu", precision="fp32")) as backend:
        backend.load(source)
        if backend.module is None:
            raise ModelError(f"no module was loaded from '{source}'")
        dynamic = {t.name: t.dynamic_axes() for t in spec.inputs if t.dynamic_axes()}
        return export_onnx(backend.module, example_inputs(spec), out_path, output_names=spec.outputs,
                           opset=config.opset, dynamic_axes=dynamic, atol=config.atol, check=check)
