"""The ``Backend`` protocol and ``BACKEND_TABLE``, the one table of the model backends.

Every list of backends, model-file suffixes and compile formats is derived from ``BACKEND_TABLE``:
``--backend``'s choices (``engine.stages.BACKENDS``), which file a backend reads and the order
``auto`` tries them in (``engine.backends.choose``), the suffixes a weights folder is searched for
(``engine.neural.model_files``) and ``compile --format``'s choices (``facepaint.compile.models``).
A new backend is one row. Backend classes are named as ``"module:Class"`` strings imported only
when used, so reading the table imports neither torch nor onnxruntime nor TensorRT. ``engine/``
never imports ``compile/`` or ``runtime/`` (tests/test_import_graph.py): an exporter is named here
by the ``compile --format`` that writes the file, and only ``compile/`` knows how.
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
class BackendRow:
    """One row of the backend table.

    Attributes:
        name: ``--backend`` value (``torch``, ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``).
        suffix: The model file it runs: ``STEM + suffix`` in a weights folder.
        backend: ``"module:Class"`` of the ``Backend`` that loads it.
        exporter: The ``compile --format`` that writes that file from the trained safetensors, or
            None for the safetensors themselves (written by training).
        needs_gpu: It runs on CUDA only (``auto`` skips it on the CPU; naming it there is an error).
        auto_rank: Where ``auto`` tries it, 1 first (fastest first).
    """

    name: str
    suffix: str
    backend: str
    exporter: str | None
    needs_gpu: bool
    auto_rank: int


# On the CPU onnxruntime beats eager torch on small convnets (a 2 M-parameter UNet at 256²: 86 ms
# against 145 ms on this project's 2-core machines); on CUDA the TensorRT builds come first.
BACKEND_TABLE: tuple[BackendRow, ...] = (
    BackendRow("torch", ".safetensors", "facepaint.engine.backends.torch:TorchBackend", None,
               needs_gpu=False, auto_rank=4),
    BackendRow("onnxruntime", ".onnx", "facepaint.engine.backends.onnx:OnnxBackend", "onnx",
               needs_gpu=False, auto_rank=3),
    BackendRow("tensorrt", ".engine", "facepaint.engine.backends.tensorrt:TensorRTBackend", "tensorrt",
               needs_gpu=True, auto_rank=1),
    BackendRow("tensorrt-rtx", ".onnx", "facepaint.engine.backends.rtx:TensorRTRTXBackend", "onnx",
               needs_gpu=True, auto_rank=2),
)
BACKEND_NAMES = tuple(row.name for row in BACKEND_TABLE)
# Every suffix a weights folder may hold a model in, once each, in table order.
MODEL_SUFFIXES = tuple(dict.fromkeys(row.suffix for row in BACKEND_TABLE))
# Formats that torch.load / pickle would have to unpickle: never loaded, whatever the caller asks.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def backend_row(name: str) -> BackendRow:
    """The row of backend ``name``.

    Raises:
        ConfigError: An unknown name (the message lists the known ones).
    """
    for row in BACKEND_TABLE:
        if row.name == name:
            return row
    raise ConfigError(f"unknown backend '{name}'; known: auto, {', '.join(BACKEND_NAMES)}")


def auto_order(cuda: bool) -> tuple[BackendRow, ...]:
    """The rows ``auto`` tries, fastest first; on the CPU only those that run there."""
    return tuple(sorted((row for row in BACKEND_TABLE if cuda or not row.needs_gpu), key=lambda r: r.auto_rank))


def supported_suffixes() -> str:
    """The model-file suffixes and their backends as one readable string (for error messages)."""
    return ", ".join(f"{suffix} ({', '.join(r.name for r in BACKEND_TABLE if r.suffix == suffix)})"
                     for suffix in MODEL_SUFFIXES)


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
        threads: onnxruntime's intra-op threads for this model on the CPU (0: its own choice, one
            per core). Torch's thread pool belongs to the process and is left as it is.
    """

    device: str = "cpu"
    precision: str | None = None
    allow_fp32: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(f"backend device must be cpu, cuda or cuda:N, got '{self.device}'")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"backend precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.threads < 0:
            raise ConfigError(f"backend threads must be 0 (the runtime's choice) or more, got {self.threads}")

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
