"""PyTorch backend: safetensors weights plus a JSON config naming a registered architecture.

The module is rebuilt from ``ARCHITECTURES`` (never unpickled), so a weights file cannot run code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from facepaint.engine.backends.base import BackendBase, BackendOptions, load_object
from facepaint.engine.backends.spec import ModelSpec, check_weights_sha256, read_spec
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError

# Values are "module:factory" strings so that listing the architectures imports none of them.
ARCHITECTURES: Mapping[str, str] = MappingProxyType({
    "backward_warp": "facepaint.engine.backends.modules:BackwardWarp",
    "coarse_to_fine_generator": "facepaint.engine.neural.generator:build_generator",
    "landmark_transformer": "facepaint.engine.neural.landmark_transformer:LandmarkTransformerNet",
    "au_regressor": "facepaint.engine.neural.landmark_transformer:AURegressor",
    "background_mixer": "facepaint.engine.neural.background_mixer:BackgroundMixerNet",
    "mouth_net": "facepaint.engine.neural.mouth_net:MouthNet",
})

Factory = Callable[..., nn.Module]


def torch_device(options: BackendOptions) -> torch.device:
    """Return the torch device for ``options``.

    Raises:
        BackendUnavailable: If CUDA is asked for and this torch build has no CUDA device.
    """
    if options.is_cuda and not torch.cuda.is_available():
        raise BackendUnavailable(
            f"device '{options.device}' asked for, but torch {torch.__version__} sees no CUDA device "
            f"(built for CUDA {torch.version.cuda}); install a CUDA build of torch or use device='cpu'")
    return torch.device(options.device)


def compute_dtype(options: BackendOptions, device: torch.device) -> torch.dtype:
    """Return the compute dtype: fp16 only on CUDA, fp32 on CPU only when the caller allowed it.

    Raises:
        BackendUnavailable: If fp16 is asked for on CPU without ``allow_fp32``.
    """
    if options.precision == "fp32" or (options.precision is None and device.type != "cuda"):
        return torch.float32
    if device.type == "cuda":
        return torch.float16
    if options.allow_fp32:
        return torch.float32
    raise BackendUnavailable("fp16 asked for on CPU, where torch has no fast fp16 kernels; "
                             "use a CUDA device, precision='fp32', or pass allow_fp32=True (--allow-fp32)")


def build_module(spec: ModelSpec, architectures: Mapping[str, str | Factory] = ARCHITECTURES) -> nn.Module:
    """Instantiate the architecture named in ``spec`` with its config.

    Raises:
        ModelError: If the architecture is unknown or rejects the config.
    """
    target = architectures.get(spec.architecture)
    if target is None:
        raise ModelError(f"unknown architecture '{spec.architecture}'; known: {', '.join(sorted(architectures))}")
    factory = load_object(target) if isinstance(target, str) else target
    try:
        return factory(**spec.config)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ModelError(f"architecture '{spec.architecture}' rejects config {spec.config}: {exc}") from None


class TorchBackend(BackendBase):
    """Runs a registered ``nn.Module`` loaded from ``model.safetensors`` + ``model.json``.

    Inputs may live on any device; they are moved to the backend's device. Floating-point inputs
    are cast to the compute dtype and floating-point outputs are returned as float32, so fp16 is a
    compute choice and never changes what callers receive.
    """

    def __init__(self, options: BackendOptions | None = None,
                 architectures: Mapping[str, str | Factory] = ARCHITECTURES) -> None:
        """Create an unloaded backend.

        Args:
            options: Device and precision.
            architectures: Architecture registry (name to factory or ``"module:factory"``).
        """
        super().__init__(options)
        self.architectures = architectures
        self.module: nn.Module | None = None
        self.spec: ModelSpec | None = None
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    def load(self, path: str | Path) -> None:
        """Build the module from the JSON config and load the safetensors weights strictly.

        Raises:
            BackendUnavailable: If the device or precision is not available.
            ModelError: If a file is missing or the weights do not fit the architecture.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self._check_not_loaded()
        self.device = torch_device(self.options)
        self.dtype = compute_dtype(self.options, self.device)
        spec = read_spec(path)
        check_weights_sha256(path, spec.weights_sha256)
        module = build_module(spec, self.architectures)
        try:
            state = load_file(str(path), device="cpu")
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"cannot read weights '{path}': {exc}") from None
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"weights '{path}' do not fit architecture '{spec.architecture}': {exc}") from None
        self.module = module.eval().to(self.device, self.dtype)
        self.spec = spec
        self.input_names = tuple(t.name for t in spec.inputs)
        self.output_names = spec.outputs
        self._loaded = True

    def infer(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the module on named tensors (positional in ``model.json`` input order).

        Raises:
            ModelError: Before ``load`` or after ``close``.
            ConfigError: If the input names differ from the model's.
            BackendUnavailable: When the device runs out of memory (the message says how much was free).
        """
        self._check_ready(inputs)
        if self.module is None:  # _check_ready refuses a closed or unloaded backend first
            raise ModelError(f"{type(self).__name__} has no model: call load(path) before infer()")
        try:
            args = [self._prepare(inputs[name]) for name in self.input_names]
            with torch.inference_mode():
                result = self.module(*args)
        except torch.OutOfMemoryError:
            raise BackendUnavailable(_out_of_memory(self.device, self.spec)) from None
        results = result if isinstance(result, (tuple, list)) else (result,)
        if len(results) != len(self.output_names):
            raise ModelError(f"module returned {len(results)} outputs, model.json names {list(self.output_names)}")
        return {name: _as_output(t) for name, t in zip(self.output_names, results, strict=True)}

    def _prepare(self, tensor: torch.Tensor) -> torch.Tensor:
        dtype = self.dtype if tensor.is_floating_point() else tensor.dtype
        return tensor.to(self.device, dtype, non_blocking=True)

    def _release(self) -> None:
        self.module = None


def _out_of_memory(device: torch.device, spec: ModelSpec | None) -> str:
    """One line for an out-of-memory error: the device, what ran, how much memory was free."""
    name = spec.architecture if spec is not None else "the model"
    free = ""
    if device.type == "cuda":
        try:
            left, total = torch.cuda.mem_get_info(device)
            free = f", {left / 2**30:.1f} of {total / 2**30:.1f} GiB free"
        except RuntimeError:
            pass  # the context itself may be unusable after the failure; the message still holds
    return (f"{device} ran out of memory running '{name}'{free}; close other programs using the GPU, use a "
            "smaller portrait or input size, or run on the CPU (device='cpu')")


def _as_output(tensor: Any) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() and tensor.dtype != torch.float32 else tensor
