"""Training's write side of the model files: a trained network saved as the engine reads it.

``save_model`` writes ``STEM.safetensors`` (fp16 weights) and ``STEM.json`` (the backends'
``ModelSpec``: architecture, config, inputs, outputs, the weights' sha256 and how they were trained),
the pair ``facepaint.engine.neural.model_files`` reads and checks. The engine only reads models; this
module is where they are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from facepaint.engine.backends.spec import ModelSpec, TensorSpec, save_weights
from facepaint.engine.errors import ModelError
from facepaint.engine.neural.model_files import AU_REGRESSOR, GENERATOR, MIXER, MODELS, MOUTH, TRANSFORMER

if TYPE_CHECKING:
    from torch import nn


def stage_spec(stem: str, config: dict[str, Any], training: dict[str, Any] | None = None) -> ModelSpec:
    """The ``ModelSpec`` of a model of the stage networks, for ``config`` (the architecture's keywords).

    The batch axis is dynamic; the spatial sizes are the ones the model was trained at.
    """
    from facepaint.engine.neural.inputs import IN_CHANNELS
    from facepaint.engine.neural.landmark_transformer import N_DRIVING, N_POINTS

    batch3 = ("batch", None, None)
    batch4 = ("batch", None, None, None)
    if stem == GENERATOR:
        size = int(config.get("size", 128))
        inputs: tuple[TensorSpec, ...] = (TensorSpec("x", (1, IN_CHANNELS, size, size), axes=batch4),)
        return ModelSpec("coarse_to_fine_generator", config, inputs, ("face", "segmentation", "residual"),
                         training=training or {})
    if stem in (TRANSFORMER, AU_REGRESSOR):
        shape = TensorSpec("source" if stem == TRANSFORMER else "shape", (1, N_POINTS, 3), axes=batch3)
        extra = (TensorSpec("au", (1, N_DRIVING), axes=("batch", None)),) if stem == TRANSFORMER else ()
        outputs = ("delta",) if stem == TRANSFORMER else ("au",)
        return ModelSpec(stem, config, (shape, *extra), outputs, training=training or {})
    if stem == MIXER:
        size = int(config.get("size", 64))
        inputs = tuple(TensorSpec(name, (1, ch, size, size), axes=batch4)
                       for name, ch in (("face", 3), ("mask", 1), ("background", 3)))
        return ModelSpec("background_mixer", config, inputs, ("rgb", "alpha"), training=training or {})
    if stem == MOUTH:
        from facepaint.engine.neural.mouth_net import IN_CHANNELS as MOUTH_CHANNELS

        size = int(config.get("size", 64))
        inputs = (TensorSpec("x", (1, MOUTH_CHANNELS, size, size), axes=batch4),)
        return ModelSpec("mouth_net", config, inputs, ("rgb", "alpha"), training=training or {})
    raise ModelError(f"unknown model '{stem}'; known: {', '.join(MODELS)}")


def save_model(folder: str | Path, stem: str, module: nn.Module, config: dict[str, Any],
               training: dict[str, Any]) -> Path:
    """Write ``module`` as ``folder/STEM.safetensors`` (fp16) + ``STEM.json``; returns the safetensors path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return save_weights(module, folder / f"{stem}.safetensors", stage_spec(stem, config, training), half=True)
