"""Which backend runs a neural stage's model: the file, the runtime, the device, and a warm-up check.

A model is named by a stem (``generator``) and lives in a folder: the weights shipped in the
package or ``--weights DIR``. Each backend reads its own file there: ``STEM.safetensors`` (torch),
``STEM.onnx`` (onnxruntime, TensorRT-RTX) or ``STEM.engine`` (TensorRT). ``--backend auto`` tries
the fastest first and says which it took and why the others were passed over; a named backend
that cannot run is an error, never a quiet switch to another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facepaint.engine.backends.base import Backend, BackendOptions, auto_order, backend_row, load_object
from facepaint.engine.errors import BackendUnavailable, ConfigError, EngineMismatch, FacepaintError, ModelError


@dataclass(frozen=True, eq=False)
class ChosenModel:
    """A loaded model and how it was chosen.

    Attributes:
        backend: The loaded backend (close it when done).
        name: Backend name (``torch``, ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``).
        path: The model file.
        device: The resolved device (``cpu`` or ``cuda[:N]``).
        passed_over: ``auto`` only: one ``backend: reason`` per candidate tried before.
    """

    backend: Backend
    name: str
    path: Path
    device: str
    passed_over: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the run summary (``generator: torch on cpu (auto; onnxruntime: no file)``)."""
        why = f" (auto; {'; '.join(self.passed_over)})" if self.passed_over else ""
        return f"{self.path.stem}: {self.name} on {self.device}{why}"


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` where torch sees a GPU, else ``cpu``; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def open_model(stem: str, folder: Path, backend: str = "auto", device: str = "cpu",
               precision: str | None = None, allow_fp32: bool = False, threads: int = 0) -> ChosenModel:
    """Load model ``stem`` from ``folder`` with ``backend`` (or the best available for ``auto``).

    Raises:
        ConfigError: An unknown backend name, or a GPU-only one on the CPU.
        BackendUnavailable / EngineMismatch / ModelError: From the named backend; for ``auto``,
            one error listing why every candidate was passed over.
    """
    resolved = resolve_device(device)
    options = BackendOptions(device=resolved, precision=precision, allow_fp32=allow_fp32, threads=threads)
    if backend != "auto":
        path = folder / f"{stem}{backend_row(backend).suffix}"
        return ChosenModel(_load(backend, path, options), backend, path, resolved)
    passed: list[str] = []
    for row in auto_order(cuda=options.is_cuda):
        path = folder / f"{stem}{row.suffix}"
        if not path.is_file():
            passed.append(f"{row.name}: no {path.name}")
            continue
        try:
            return ChosenModel(_load(row.name, path, options), row.name, path, resolved, tuple(passed))
        except (BackendUnavailable, EngineMismatch, ModelError, ConfigError) as exc:
            passed.append(f"{row.name}: {exc}")
    raise BackendUnavailable(f"--backend auto found no way to run {stem} from {folder} on {resolved}: "
                             + "; ".join(passed))


def _load(name: str, path: Path, options: BackendOptions) -> Backend:
    """Create backend ``name`` and load ``path`` (closed again if the load fails).

    Raises:
        ConfigError: A GPU-only backend on the CPU.
        ModelError: When the file is missing.
        FacepaintError: Whatever the backend raises.
    """
    row = backend_row(name)
    if row.needs_gpu and not options.is_cuda:
        raise ConfigError(f"{name} runs on CUDA only; got device '{options.device}' (use --device cuda, "
                          "or --backend onnxruntime for the CPU)")
    if not path.is_file():
        raise ModelError(f"{name} needs {path}, which does not exist; build it with `facepaint-live compile` "
                         "or use --backend torch with the shipped weights")
    backend: Backend = load_object(row.backend)(options)
    try:
        backend.load(path)
    except FacepaintError:
        backend.close()
        raise
    return backend


def check_warm_up(outputs: Mapping[str, object], precision: str | None, what: str) -> None:
    """Refuse a warm-up result that is NaN, infinite or all black: the classic FP16 overflow.

    Args:
        outputs: The warm-up's output tensors.
        precision: The precision asked for (None: the model's own).
        what: The model, for the message.

    Raises:
        BackendUnavailable: Naming ``--precision fp32``.
    """
    import torch

    for name, value in outputs.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        bad = "NaN or infinite values" if not torch.isfinite(value).all() else \
            "an all-black image" if value.numel() > 1 and float(value.abs().max()) == 0.0 else None
        if bad is not None:
            run = "in fp16" if precision != "fp32" else "in fp32"
            raise BackendUnavailable(f"{what} produced {bad} in output '{name}' at warm-up {run}; run with "
                                     "--precision fp32 (older GPUs overflow in fp16)")
