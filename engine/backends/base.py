"""The ``Backend`` protocol, the one format table, and ``backend_for``.

``FORMATS`` is read by both sides of the seam, as ultralytics reads ``export_formats`` and
``_BACKEND_MAP``: the loader picks a backend class by file suffix, and ``facepaint.compile`` picks
the exporter that produces that suffix. Both are named as ``"module:attr"`` strings and imported
only when used, so listing the formats imports neither torch nor onnxruntime nor TensorRT, and
``engine/`` never imports ``compile/``.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from facepaint.engine.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from types import TracebackType

    from torch import Tensor
    from typing_extensions import Self

PRECISIONS = ("fp32", "fp16")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclasses.dataclass(frozen=True)
class Format:
    """One row of the format table.

    Attributes:
        name: Format name used on the command line (``torch``, ``onnx``, ``tensorrt``).
        suffix: File suffix that selects this format when loading.
        backend: ``"module:Class"`` of the ``Backend`` that loads it.
        exporter: ``"module:function"`` in ``facepaint.compile`` that writes it from ``source``, called
            as ``exporter(source_path, out_path, config: CompileConfig) -> Path``; ``None`` for the
            source format itself (written by ``facepaint.engine.backends.spec.save_weights``).
        source: Name of the format the exporter reads, or ``None``.
        needs_gpu: The format only runs on CUDA.
    """

    name: str
    suffix: str
    backend: str
    exporter: str | None
    source: str | None
    needs_gpu: bool


FORMATS: tuple[Format, ...] = (
    Format("torch", ".safetensors", "facepaint.engine.backends.torch:TorchBackend",
           None, None, needs_gpu=False),
    Format("onnx", ".onnx", "facepaint.engine.backends.onnx:OnnxBackend",
           "facepaint.compile.onnx:export_weights", "torch", needs_gpu=False),
    Format("tensorrt", ".engine", "facepaint.engine.backends.tensorrt:TensorRTBackend",
           "facepaint.compile.tensorrt:export_engine", "onnx", needs_gpu=True),
)


# Formats that torch.load / pickle would have to unpickle: never loaded, whatever the caller asks.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def supported_suffixes() -> str:
    """Return the supported suffixes as one readable string (for error messages)."""
    return ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS)


def format_for(path: str | Path) -> Format:
    """Return the format row whose suffix matches ``path``.

    Raises:
        ConfigError: If the suffix is not in ``FORMATS``; the message lists the supported ones.
    """
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ConfigError(f"'{path}' is a pickled checkpoint ({suffix}), which can run code when loaded, so it is "
                          "refused; convert its state dict to .safetensors "
                          "(facepaint.engine.backends.spec.save_weights) on a machine you trust; "
                          f"supported: {supported_suffixes()}")
    for fmt in FORMATS:
        if fmt.suffix == suffix:
            return fmt
    raise ConfigError(f"unsupported model file '{path}' (suffix '{suffix}'); supported: {supported_suffixes()}")


def format_named(name: str) -> Format:
    """Return the format row called ``name``.

    Raises:
        ConfigError: If no row has that name.
    """
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ConfigError(f"unknown format '{name}'; known: {', '.join(f.name for f in FORMATS)}")


def load_object(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute.

    Raises:
        ConfigError: If the string is malformed or the attribute does not exist.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected 'module:attribute', got '{target}'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"'{module_name}' has no attribute '{attr}' (from '{target}')") from None


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """How a backend runs a model.

    Attributes:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32`` or ``fp16`` (compute precision; inputs and outputs stay as documented by
            each backend), or None for the model file's own: a TensorRT engine's header, an ONNX
            model's stored types, and for torch weights fp16 on CUDA and fp32 on the CPU (where
            torch has no fast fp16 kernels). A value given only checks the file's.
        allow_fp32: Run in fp32 when fp16 is asked for and not possible, instead of failing.
    """

    device: str = "cpu"
    precision: str | None = None
    allow_fp32: bool = False

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(f"backend device must be cpu, cuda or cuda:N, got '{self.device}'")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"backend precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")

    @property
    def is_cuda(self) -> bool:
        """Whether the device is a CUDA device."""
        return self.device.startswith("cuda")


@runtime_checkable
class Backend(Protocol):
    """Runs one model on named tensors.

    ``load`` is called once before ``infer``; ``close`` releases the model and runs its body once,
    however often it is called. A backend is a context manager that closes on exit.

    Outputs: ``infer`` returns float32 (or the model's integer) tensors on ``output_device``. Where
    ``outputs_reused`` is True (TensorRT) they are views of buffers the backend owns and the next
    ``infer`` overwrites: copy (``.clone()``) what must outlive it. Otherwise the caller owns them.
    onnxruntime always returns CPU tensors, whatever device it runs on.
    """

    outputs_reused: bool

    @property
    def output_device(self) -> str:
        """Where ``infer``'s outputs live (``cpu`` or ``cuda:N``)."""

    def load(self, path: str | Path) -> None:
        """Load the model file at ``path``."""

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run the model on named input tensors and return named output tensors."""

    def close(self) -> None:
        """Release the model; later calls do nothing."""

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class BackendBase:
    """Lifecycle shared by the backends: close-once, context manager, state checks.

    Subclasses implement ``load``, ``infer`` and ``_release``.
    """

    format_name: ClassVar[str] = ""
    outputs_reused: ClassVar[bool] = False

    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options or BackendOptions()
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self._loaded = False
        self._closed = False

    @property
    def output_device(self) -> str:
        """Where ``infer``'s outputs live: the compute device unless a backend says otherwise."""
        return self.options.device

    def close(self) -> None:
        """Release the model once; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._loaded:
            self._release()

    def _release(self) -> None:
        """Drop the backend's resources (called at most once)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_ready(self, inputs: dict[str, Any]) -> None:
        """Refuse ``infer`` before ``load``, after ``close``, or with the wrong input names.

        Raises:
            ModelError: If no model is loaded or the backend is closed.
            ConfigError: If the input names differ from the model's.
        """
        if self._closed:
            raise ModelError(f"{type(self).__name__} is closed; create a new backend to run again")
        if not self._loaded:
            raise ModelError(f"{type(self).__name__} has no model: call load(path) before infer()")
        if set(inputs) != set(self.input_names):
            raise ConfigError(f"model inputs are {sorted(self.input_names)}, got {sorted(inputs)}")

    def _check_not_loaded(self) -> None:
        """Refuse a second ``load`` (one backend, one model) or a load after ``close``."""
        if self._closed or self._loaded:
            state = "closed" if self._closed else "already loaded"
            raise ModelError(f"{type(self).__name__} is {state}; create a new backend for another model")


def backend_for(path: str | Path, device: str = "cpu", *, precision: str | None = None,
                allow_fp32: bool = False) -> Backend:
    """Create the backend that matches ``path``'s suffix and load the model.

    Args:
        path: Model file (``.safetensors`` with a ``.json`` beside it, ``.onnx`` or ``.engine``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32`` or ``fp16`` to check the file against, or None for the file's own.
        allow_fp32: Run fp32 where fp16 is asked for and not possible.

    Returns:
        A loaded backend; close it (or use it in a ``with`` block) when done.

    Raises:
        ConfigError: On an unknown suffix or a CPU device for a GPU-only format.
        BackendUnavailable: If the runtime, the device or the precision is missing here.
        ModelError: If the file cannot be read.
    """
    options = BackendOptions(device=device, precision=precision, allow_fp32=allow_fp32)
    fmt = format_for(path)
    if fmt.needs_gpu and not options.is_cuda:
        raise ConfigError(f"{fmt.name} models run on CUDA only; pass device='cuda' for '{path}'")
    backend = load_object(fmt.backend)(options)
    try:
        backend.load(path)
    except BaseException:
        backend.close()
        raise
    return backend
