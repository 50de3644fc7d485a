"""TensorRT 10 backend: provenance-checked engines, preallocated CUDA I/O, the caller's stream.

Written against TensorRT 10's Python API (``Runtime.deserialize_cuda_engine``, the named-tensor
I/O API ``num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode``, ``set_input_shape``,
``set_tensor_address`` and ``execute_async_v3``), in the FasterLivePortrait / ultralytics style:
I/O tensors are allocated once at the profile's largest shape and bound once, each call copies the
inputs in and runs on the current torch CUDA stream, and nothing goes through numpy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from facepaint.engine.backends.base import BackendBase, BackendOptions
from facepaint.engine.backends.provenance import (
    EngineHeader,
    EngineTarget,
    ShapeProfile,
    check_header,
    read_engine_file,
)
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError
from facepaint.engine.files import sha256_file

INSTALL = "pip install 'facepaint-live[tensorrt]'"


def import_tensorrt() -> Any:
    """Import TensorRT or explain how to install it.

    Raises:
        BackendUnavailable: If the ``tensorrt`` package is missing or fails to load.
    """
    try:
        import tensorrt
    except (ImportError, OSError) as exc:
        raise BackendUnavailable(f"TensorRT is not installed or fails to load ({exc}); run {INSTALL} "
                                 "on a machine with an NVIDIA GPU, or use an .onnx model") from None
    return tensorrt


def cuda_identity(device: torch.device) -> tuple[str, str]:
    """Return ``(gpu name, "major.minor")`` of a CUDA device.

    Raises:
        BackendUnavailable: If torch sees no CUDA device.
    """
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"TensorRT needs a CUDA device; torch {torch.__version__} sees none "
                                 f"(built for CUDA {torch.version.cuda}); install a CUDA build of torch")
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    """Map a ``tensorrt.DataType`` to a torch dtype.

    Raises:
        ModelError: For a type with no torch equivalent.
    """
    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
             "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool, "UINT8": torch.uint8}
    for name, value in table.items():
        if getattr(trt.DataType, name, None) == dtype:
            return value
    raise ModelError(f"engine uses TensorRT type {dtype}, which has no torch equivalent")


def check_shape(name: str, shape: tuple[int, ...], profile: ShapeProfile | None) -> None:
    """Refuse a shape outside the engine's optimization profile (None: a static input, whose
    shape the engine itself checks).

    Raises:
        ConfigError: With the profile's bounds and how to rebuild for the new shape.
    """
    if profile is not None and not profile.contains(shape):
        raise ConfigError(f"input '{name}' has shape {shape}, outside the engine profile "
                          f"min {profile.min} .. max {profile.max}; rebuild the engine with --profile "
                          f"{name}=MIN:OPT:MAX covering it")


@dataclasses.dataclass
class _Binding:
    """One preallocated I/O tensor (at the profile's largest shape) and the shape now in use."""

    name: str
    buffer: torch.Tensor
    shape: tuple[int, ...]
    profile: ShapeProfile | None = None

    def view(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The contiguous prefix of the buffer seen as ``shape`` (TensorRT reads it from the base)."""
        count = 1
        for dim in shape:
            count *= dim
        return self.buffer.view(-1)[:count].view(shape)


class TensorRTBackend(BackendBase):
    """Runs a facepaint ``.engine`` file (provenance header + serialized TensorRT engine).

    ``infer`` takes CUDA or CPU tensors, copies them into the bound input buffers on the caller's
    current CUDA stream and returns views of the bound output buffers: they are valid until the
    next ``infer`` (``.clone()`` what you keep), and they are ready once that stream reaches them.
    """

    outputs_reused = True  # views of the bound output buffers (see the class docstring)

    def __init__(self, options: BackendOptions | None = None) -> None:
        """Create an unloaded backend; ``options.device`` must be CUDA."""
        super().__init__(options)
        self.header: EngineHeader | None = None
        self._engine: Any = None
        self._context: Any = None
        self._inputs: dict[str, _Binding] = {}
        self._outputs: dict[str, _Binding] = {}

    def load(self, path: str | Path) -> None:
        """Check provenance, deserialize the engine and bind preallocated I/O tensors.

        Raises:
            BackendUnavailable: Without TensorRT or CUDA.
            EngineMismatch: If the engine was built for another TensorRT, GPU, precision or source.
            ModelError: If the file is unreadable or TensorRT cannot deserialize it.
        """
        self._check_not_loaded()
        trt = import_tensorrt()
        device = torch.device(self.options.device)
        gpu_name, capability = cuda_identity(device)
        header, payload = read_engine_file(path)
        source = Path(header.source)
        # The source hash is checked when the source is still where it was built from; an engine
        # shipped alone is checked against TensorRT, GPU and precision only.
        target = EngineTarget(trt.__version__, gpu_name, capability, self.options.precision,
                              self.options.allow_fp32, sha256_file(source) if source.is_file() else None)
        check_header(header, target, path)
        with torch.cuda.device(device):
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = runtime.deserialize_cuda_engine(payload)
            if engine is None:
                raise ModelError(f"TensorRT {trt.__version__} could not deserialize '{path}'")
            self._context = engine.create_execution_context()
            self._engine = engine
            self._bind(trt, device, {p.name: p for p in header.profiles})
        self.header = header
        self._loaded = True

    def _bind(self, trt: Any, device: torch.device, profiles: dict[str, ShapeProfile]) -> None:
        """Allocate every I/O tensor at its largest shape and bind its address once."""
        engine, context = self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in inputs:
            shape = tuple(engine.get_tensor_shape(name))
            profile = profiles.get(name) or _profile_from_engine(engine, name, shape)
            context.set_input_shape(name, profile.max)
            buffer = torch.empty(profile.max, dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=device)
            self._inputs[name] = _Binding(name, buffer, profile.max, profile)
        for name in (n for n in names if n not in self._inputs):
            shape = tuple(context.get_tensor_shape(name))
            buffer = torch.empty(shape, dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=device)
            self._outputs[name] = _Binding(name, buffer, shape)
        for binding in (*self._inputs.values(), *self._outputs.values()):
            context.set_tensor_address(binding.name, binding.buffer.data_ptr())
        self.input_names = tuple(inputs)
        self.output_names = tuple(self._outputs)

    def infer(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the engine on the current CUDA stream.

        Raises:
            ConfigError: If names differ or a shape is outside the profile.
            ModelError: Before ``load``, after ``close``, or if TensorRT fails to enqueue.
        """
        self._check_ready(inputs)
        for name, tensor in inputs.items():
            binding = self._inputs[name]
            shape = tuple(tensor.shape)
            check_shape(name, shape, binding.profile)
            if shape != binding.shape:
                self._context.set_input_shape(name, shape)
                binding.shape = shape
            binding.view(shape).copy_(tensor, non_blocking=True)
        if not self._context.execute_async_v3(self._stream_handle()):
            raise ModelError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        return {name: b.view(tuple(self._context.get_tensor_shape(name))) for name, b in self._outputs.items()}

    def _stream_handle(self) -> int:
        """The caller's current CUDA stream on the engine's device (the inputs were copied on it)."""
        return torch.cuda.current_stream(self._inputs[self.input_names[0]].buffer.device).cuda_stream

    def _release(self) -> None:
        # The context must go before the engine that created it.
        self._context = None
        self._engine = None
        self._inputs.clear()
        self._outputs.clear()


def _profile_from_engine(engine: Any, name: str, shape: tuple[int, ...]) -> ShapeProfile:
    """The engine's own profile 0 for an input the header does not describe (static or dynamic)."""
    if -1 not in shape:
        return ShapeProfile(name, shape, shape, shape)
    lo, opt, hi = engine.get_tensor_profile_shape(name, 0)
    return ShapeProfile(name, tuple(lo), tuple(opt), tuple(hi))
