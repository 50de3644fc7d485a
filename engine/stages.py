"""Which implementation runs each FACEGAN stage, chosen from config.

Every stage has a geometric implementation (no weights, the CPU default) and may have a neural
twin (trained by this project, weights shipped in the wheel). ``STAGES`` names them as
``"module:Class"`` strings imported only when chosen, so a geometric run never imports a network,
and a neural stage that is not built into this install is a one-line error, never a silent
switch to the geometric one.

Constructors: geometric stages take ``(source, stage_config)``; neural stages take
``(source, stage_config, model_config)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from facepaint.engine.backends.base import BACKEND_NAMES, load_object
from facepaint.engine.errors import ConfigError

STAGE_KINDS = ("geometric", "neural")
DEVICES = ("cpu", "cuda", "auto")
BACKENDS = (*BACKEND_NAMES, "auto")  # --backend's choices: the backend table's rows, and auto
PRECISIONS = ("fp32", "fp16")
_CUDA_INDEX = re.compile(r"^cuda:\d+$")

STAGES: dict[tuple[str, str], str] = {
    ("transformer", "geometric"): "facepaint.engine.landmark_transformer:GeometricLandmarkTransformer",
    ("transformer", "neural"): "facepaint.engine.neural.landmark_transformer:NeuralLandmarkTransformer",
    ("reenactor", "geometric"): "facepaint.engine.face_reenactor:GeometricFaceReenactor",
    ("reenactor", "neural"): "facepaint.engine.neural.face_reenactor:NeuralFaceReenactor",
    ("mixer", "geometric"): "facepaint.engine.background_mixer:GeometricBackgroundMixer",
    ("mixer", "neural"): "facepaint.engine.neural.background_mixer:NeuralBackgroundMixer",
}


@dataclass(frozen=True)
class ModelConfig:
    """Where the neural stages' weights come from and how they run.

    Attributes:
        weights: A folder (a ``train`` output or compiled engines) or None for the weights shipped
            in the package.
        backend: ``torch`` (safetensors), ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``, or
            ``auto`` (the default: the fastest one installed whose file is in the weights folder,
            said in the summary; the shipped folder holds safetensors, so the stages run on torch
            and the mouth net, which onnxruntime runs in a third of torch's time, on onnxruntime
            when the ``onnx`` extra is installed).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
        precision: ``fp32`` or ``fp16``; None takes the precision the model file was built with
            (a compiled engine's header), so a default build never needs a matching flag.
        allow_fp32: Run fp32 where fp16 is asked for and not possible, instead of failing.
    """

    weights: str | None = None
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = None
    allow_fp32: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if self.device not in DEVICES and not _CUDA_INDEX.match(self.device):
            raise ValueError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got '{self.device}'")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")


def check_kind(stage: str, kind: str) -> None:
    """Refuse a stage kind that is not one of ``STAGE_KINDS``.

    Raises:
        ValueError: With the valid kinds (``build_config`` turns it into a ConfigError).
    """
    if kind not in STAGE_KINDS:
        raise ValueError(f"{stage} kind must be one of {', '.join(STAGE_KINDS)}, got '{kind}'")


def build_stage(stage: str, kind: str, *args: Any) -> Any:
    """Construct the ``kind`` implementation of ``stage`` with ``args``.

    Raises:
        ConfigError: When that implementation is not part of this install.
    """
    target = STAGES.get((stage, kind))
    if target is None:
        raise ConfigError(f"unknown {stage} kind '{kind}'; known: {', '.join(STAGE_KINDS)}")
    try:
        cls = load_object(target)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("facepaint."):
            raise
        raise ConfigError(f"this install has no {kind} {stage} ({target.partition(':')[0]} is missing); "
                          f"use --{stage} geometric or upgrade facepaint-live") from None
    return cls(*args)
