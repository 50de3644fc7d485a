"""TensorRT-RTX backend: an ``.onnx`` model through onnxruntime's NVIDIA TensorRT-RTX execution
provider, the consumer-GPU path (GeForce RTX, Ampere and later).

The provider is a plugin library shipped by the PyPI package ``onnxruntime-ep-nv-tensorrt-rtx``
(the ``[rtx]`` extra), which bundles the TensorRT-RTX runtime: nothing comes from NVIDIA's own
index. It compiles the graph just in time for the GPU it finds and keeps the compiled kernels in
a runtime cache on disk, so only the first run on a machine pays for the compile. Written against
the documented plugin-EP API (``register_execution_provider_library``, ``get_ep_devices``,
``SessionOptions.add_provider_for_devices``); this project's machines cannot install it, so the
ONNX it consumes is what the tests check (with onnxruntime's CPU provider).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facepaint.engine.backends.base import BackendOptions
from facepaint.engine.backends.onnx import OnnxBackend
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError
from facepaint.engine.files import cache_root

EXTRA = "pip install 'facepaint-live[rtx]'"
# Provider option naming the on-disk cache of JIT-compiled kernels (onnxruntime's NV TensorRT-RTX
# EP documentation, "Execution Provider Options").
CACHE_OPTION = "nv_runtime_cache_path"


def import_rtx_ep() -> Any:
    """The EP package, or a one-line error naming the extra.

    Raises:
        BackendUnavailable: If ``onnxruntime-ep-nv-tensorrt-rtx`` is not installed.
    """
    try:
        import onnxruntime_ep_nv_tensorrt_rtx as rtx
    except ImportError:
        raise BackendUnavailable(f"the TensorRT-RTX backend needs the NVIDIA TensorRT-RTX execution provider; "
                                 f"run {EXTRA}") from None
    return rtx


def default_cache_dir() -> Path:
    """Where compiled kernels are kept: ``$FACEPAINT_CACHE`` or the user's cache folder."""
    return cache_root() / "tensorrt-rtx"


class TensorRTRTXBackend(OnnxBackend):
    """Runs an ``.onnx`` file on an RTX GPU through the TensorRT-RTX execution provider.

    Args:
        options: Device (must be CUDA) and precision (the model's stored one, as for ONNX).
        cache_dir: Runtime-cache folder (None: ``default_cache_dir()``).
    """

    def __init__(self, options: BackendOptions | None = None, cache_dir: Path | None = None) -> None:
        super().__init__(options)
        if not self.options.is_cuda:
            raise ConfigError(f"tensorrt-rtx runs on an NVIDIA RTX GPU; got device '{self.options.device}' "
                              "(use --device cuda, or --backend onnxruntime for the CPU)")
        self.cache_dir = cache_dir or default_cache_dir()

    def _session(self, ort: Any, path: str | Path) -> tuple[Any, str]:
        rtx = import_rtx_ep()
        name = rtx.get_ep_name()
        if name not in {d.ep_name for d in ort.get_ep_devices()}:
            ort.register_execution_provider_library(name, rtx.get_library_path())
        index = int(self.options.device.partition(":")[2] or 0)
        devices = [d for d in ort.get_ep_devices() if d.ep_name == name]
        if len(devices) <= index:
            raise BackendUnavailable(f"the TensorRT-RTX provider found {len(devices)} RTX GPU(s), device "
                                     f"'{self.options.device}' asked for; it needs an Ampere or newer RTX GPU")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        so = ort.SessionOptions()
        so.add_provider_for_devices([devices[index]], {CACHE_OPTION: str(self.cache_dir)})
        try:
            session = ort.InferenceSession(str(path), sess_options=so)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime (TensorRT-RTX) cannot load '{path}': {exc}") from None
        return session, name
