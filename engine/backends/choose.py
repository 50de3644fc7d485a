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

from facepaint.engine.backends.base import Backend, BackendOptions, load_object
from facepaint.engine.errors import BackendUnavailable, ConfigError, EngineMismatch, FacepaintError, ModelError

# backend name -> (file suffix, "module:Class")
BACKEND_FILES: dict[str, tuple[str, str]] = {
    "torch": (".safetensors", "facepaint.engine.backends.torch:TorchBackend"),
    "onnxruntime": (".onnx", "facepaint.engine.backends.onnx:OnnxBackend"),
    "tensorrt": (".engine", "facepaint.engine.backends.tensorrt:TensorRTBackend"),
    "tensorrt-rtx": (".onnx", "facepaint.engine.backends.rtx:TensorRTRTXBackend"),
}
# What ``auto`` tries, fastest first. On the CPU onnxruntime beats eager torch on small convnets
# (a 2 M-parameter UNet at 256²: 86 ms against 145 ms on this project's 2-core machines).
AUTO_ORDER = {"cuda": ("tensorrt", "tensorrt-rtx", "onnxruntime", "torch"), "cpu": ("onnxruntime", "torch")}


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
               precision: str | None = None, allow_fp32: bool = False) -> ChosenModel:
    """Load model ``stem`` from ``folder`` with ``backend`` (or the best available for ``auto``).

    Raises:
        ConfigError: An unknown backend name.
        BackendUnavailable / EngineMismatch / ModelError: From the named backend; for ``auto``,
            one error listing why every candidate was passed over.
    """
    resolved = resolve_device(device)
    options = BackendOptions(device=resolved, precision=precision, allow_fp32=allow_fp32)
    if backend != "auto":
        if backend not in BACKEND_FILES:
            raise ConfigError(f"unknown backend '{backend}'; known: auto, {', '.join(BACKEND_FILES)}")
        path = folder / f"{stem}{BACKEND_FILES[backend][0]}"
        return ChosenModel(_load(backend, path, options), backend, path, resolved)
    passed: list[str] = []
    for name in AUTO_ORDER["cuda" if resolved.startswith("cuda") else "cpu"]:
        path = folder / f"{stem}{BACKEND_FILES[name][0]}"
        if not path.is_file():
            passed.append(f"{name}: no {path.name}")
            continue
        try:
            return ChosenModel(_load(name, path, options), name, path, resolved, tuple(passed))
        except (BackendUnavailable, EngineMismatch, ModelError, ConfigError) as exc:
            passed.append(f"{name}: {exc}")
    raise BackendUnavailable(f"--backend auto found no way to run {stem} from {folder} on {resolved}: "
                             + "; ".join(passed))


def _load(name: str, path: Path, options: BackendOptions) -> Backend:
    """Create backend ``name`` and load ``path`` (closed again if the load fails).

    Raises:
        ModelError: When the file is missing.
        FacepaintError: Whatever the backend raises.
    """
    if not path.is_file():
        raise ModelError(f"{name} needs {path}, which does not exist; build it with `facepaint-live compile` "
                         "or use --backend torch with the shipped weights")
    backend: Backend = load_object(BACKEND_FILES[name][1])(options)
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
