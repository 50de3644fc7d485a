"""onnxruntime backend: an ``InferenceSession`` with explicitly chosen execution providers.

Tensors cross into onnxruntime through numpy on the host. That is the right path for the CPU
provider (zero-copy for contiguous float32 tensors); a CUDA path would bind device tensors with
``session.io_binding()`` (``bind_input(name, "cuda", 0, dtype, shape, tensor.data_ptr())``) to avoid
the host round-trip, which this backend does not do yet, so on CUDA it copies through the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from facepaint.engine.backends.base import BackendBase, BackendOptions
from facepaint.engine.errors import BackendUnavailable, ModelError

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_INSTALL = "pip install 'facepaint-live[onnx]'"


def import_onnxruntime() -> Any:
    """Import onnxruntime or explain how to install it.

    Raises:
        BackendUnavailable: If onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable(f"onnxruntime is not installed ({exc}); run {_INSTALL}") from None
    return onnxruntime


def providers_for(options: BackendOptions, available: list[str]) -> list[Any]:
    """Return the provider list for ``options``, refusing a device whose provider is missing.

    Raises:
        BackendUnavailable: If the requested provider is not in ``available``.
    """
    kind, _, index = options.device.partition(":")
    wanted = _PROVIDERS[kind]
    if wanted not in available:
        raise BackendUnavailable(
            f"onnxruntime has no {wanted} for device '{options.device}'; available providers: "
            f"{', '.join(available)} (install onnxruntime-gpu for CUDA, or use device='cpu')")
    if kind == "cuda":
        # CPU stays listed because onnxruntime places unsupported nodes there; the whole-session
        # fallback is checked after the session is created.
        return [(wanted, {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    return [wanted]


class OnnxBackend(BackendBase):
    """Runs an ``.onnx`` file with onnxruntime; torch tensors in, torch tensors out.

    The model's precision is the one stored in the file: ``precision='fp16'`` needs a model with
    float16 inputs; otherwise it is refused unless ``allow_fp32``. Float inputs are cast to the
    model's declared float type and float outputs come back as float32, on the CPU.
    """

    def __init__(self, options: BackendOptions | None = None) -> None:
        """Create an unloaded backend with ``options`` (device and precision)."""
        super().__init__(options)
        self.session: Any = None
        self.input_types: dict[str, str] = {}

    def load(self, path: str | Path) -> None:
        """Create the inference session.

        Raises:
            BackendUnavailable: If onnxruntime, the provider, or the precision is missing.
            ModelError: If the file cannot be loaded.
        """
        ort = import_onnxruntime()
        self._check_not_loaded()
        if not Path(path).is_file():
            raise ModelError(f"ONNX model '{path}' does not exist")
        session, wanted = self._session(ort, path)
        if wanted not in session.get_providers():
            raise BackendUnavailable(f"onnxruntime did not start {wanted} for '{path}' "
                                     f"(session runs on {session.get_providers()}); check the CUDA/cuDNN install")
        self.input_types = {i.name: i.type for i in session.get_inputs()}
        self._check_precision(path)
        self.session = session
        self.input_names = tuple(self.input_types)
        self.output_names = tuple(o.name for o in session.get_outputs())
        self._loaded = True

    def _session(self, ort: Any, path: str | Path) -> tuple[Any, str]:
        """The inference session on the options' provider, and that provider's name.

        Raises:
            BackendUnavailable: If the provider is missing.
            ModelError: If onnxruntime cannot load the file.
        """
        providers = providers_for(self.options, ort.get_available_providers())
        so = ort.SessionOptions()
        # No busy-waiting between runs: the workers of the intra-op pool otherwise spin after each
        # call, on cores that the other live stages (tracker, encoder) need. Measured on the mouth
        # net on this 2-core CPU: 3.4 ms of process CPU per call and a 5 ms pause, 0.9 without;
        # the call itself about 0.3 ms slower on a quiet machine (docs/RESULTS.md).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.intra_op_num_threads = self.options.threads
        try:
            session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime cannot load '{path}': {exc}") from None
        return session, providers[0][0] if isinstance(providers[0], tuple) else providers[0]

    def _check_precision(self, path: str | Path) -> None:
        if self.options.precision != "fp16" or self.options.allow_fp32:
            return
        if "tensor(float16)" not in self.input_types.values():
            raise BackendUnavailable(
                f"fp16 asked for, but '{path}' is an fp32 ONNX model (onnxruntime runs the stored "
                "precision); export an fp16 model, use precision='fp32', or pass allow_fp32=True")

    @property
    def output_device(self) -> str:
        """onnxruntime hands its outputs back in host memory, whatever provider ran the model."""
        return "cpu"

    def infer(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the session on named tensors.

        Raises:
            ModelError: Before ``load``, after ``close``, or if onnxruntime fails.
            ConfigError: If the input names differ from the model's.
        """
        self._check_ready(inputs)
        feed = {name: _to_numpy(t, self.input_types[name]) for name, t in inputs.items()}
        try:
            values = self.session.run(list(self.output_names), feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime failed: {exc}") from None
        return {name: _to_torch(v) for name, v in zip(self.output_names, values, strict=True)}

    def _release(self) -> None:
        self.session = None


_FLOAT_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16}


def _to_numpy(tensor: torch.Tensor, onnx_type: str) -> np.ndarray:
    """Host array for onnxruntime, float inputs cast to the model's declared float type."""
    dtype = _FLOAT_TYPES.get(onnx_type) if tensor.is_floating_point() else None
    return tensor.detach().to("cpu", dtype or tensor.dtype).contiguous().numpy()


def _to_torch(value: Any) -> torch.Tensor:
    """Torch tensor sharing the array; float16 outputs widened to float32 like the torch backend."""
    tensor = torch.from_numpy(np.asarray(value))
    return tensor.float() if tensor.dtype == torch.float16 else tensor
