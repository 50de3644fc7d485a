"""The neural stages' model files: where they are, their checksums, and how a stage opens one.

Every neural model is a stem (``MODELS``) in a folder: ``STEM.safetensors`` (fp16 weights) and
``STEM.json`` (the backends' ``ModelSpec``: architecture, config, inputs, outputs, the weights'
sha256 and how they were trained), and, once ``facepaint-live compile`` has run, ``STEM.onnx`` or
``STEM.engine`` beside them. A stage opens its model through ``engine.backends.choose`` (torch,
onnxruntime, TensorRT, TensorRT-RTX) and reads the spec's config (crop size, constants) from the
JSON and safetensors, whichever backend runs the network.

The shipped folder is this package's ``weights/``. Its safetensors must also match
``SHIPPED_SHA256``, so a file swapped in an install is refused even when its JSON was edited to
match. Nothing is ever unpickled.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facepaint.engine.backends.spec import ModelSpec, TensorSpec, check_weights_sha256, read_spec
from facepaint.engine.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from facepaint.engine.backends.choose import ChosenModel
    from facepaint.engine.stages import ModelConfig

GENERATOR = "face_generator"
TRANSFORMER = "landmark_transformer"
MIXER = "background_mixer"
AU_REGRESSOR = "au_regressor"
# The networks the product runs, in pipeline order (what `compile` builds). The AU regressor only
# measures the transformer (training loss, evaluation) and is shipped for `eval`.
STAGE_MODELS = (TRANSFORMER, GENERATOR, MIXER)
MODELS = (*STAGE_MODELS, AU_REGRESSOR)
SUFFIXES = (".safetensors", ".onnx", ".engine")

# sha256 of the shipped weights (docs/MODEL_CARD.md and docs/NEURAL_LMT_MIXER.md say how they were trained).
SHIPPED_SHA256: dict[str, str] = {
    GENERATOR: "7462f68ccd67d6efa9a7b0a1a866a3baa673851467450aa269fa49775863a4bb",
    TRANSFORMER: "b45d71c7fb3ac9d921686e723233b6dc13ea4e5b04fd6781ce280fcbaf9e2487",
    MIXER: "070730343fb438f1b1d79366e8788352160d63e37ced716f3012610506a5aabf",
    AU_REGRESSOR: "5f4a1d8286853c7657d75768f531e806de8a421bfa6c91a700e796e9b9b4e5a1",
}


def shipped_dir() -> Path:
    """The folder of the weights shipped in the package."""
    return Path(str(resources.files("facepaint.engine.neural").joinpath("weights")))


def model_folder(weights: str | Path | None, stem: str) -> Path:
    """The folder holding model ``stem``: the shipped one (``weights`` None), ``weights`` itself or
    its ``weights/`` subfolder (a ``train`` output).

    Raises:
        ModelError: When neither holds any file of ``stem``.
    """
    if stem not in MODELS:
        raise ModelError(f"unknown model '{stem}'; known: {', '.join(MODELS)}")
    if weights is None:
        return shipped_dir()
    folder = Path(weights).expanduser()
    for cand in (folder, folder / "weights"):
        if any((cand / f"{stem}{suffix}").is_file() for suffix in SUFFIXES):
            return cand
    raise ModelError(f"no {stem}.safetensors (or .onnx/.engine) in {folder} or {folder / 'weights'}; train it "
                     "with `facepaint-live train`, or leave out --weights to use the shipped weights")


def weights_file(stem: str, weights: str | Path | None) -> Path:
    """``STEM.safetensors`` of ``stem`` after its checks (the JSON's sha256; shipped: ``SHIPPED_SHA256``).

    Raises:
        ModelError: When the file or its JSON is missing, or a checksum differs.
    """
    folder = model_folder(weights, stem)
    path = folder / f"{stem}.safetensors"
    if not path.is_file():
        if weights is None:
            raise ModelError(f"shipped weights {path} are missing from this install; reinstall facepaint-live")
        raise ModelError(f"no {path.name} in {folder}: a compiled folder keeps the safetensors and JSON it was "
                         "compiled from; compile again with `facepaint-live compile`")
    spec = read_spec(path)
    if folder.resolve() == shipped_dir().resolve():
        check_weights_sha256(path, SHIPPED_SHA256[stem])
    check_weights_sha256(path, spec.weights_sha256)
    return path


def read_model_spec(stem: str, weights: str | Path | None) -> ModelSpec:
    """The checked ``ModelSpec`` of ``stem`` (architecture config, inputs, training notes)."""
    return read_spec(weights_file(stem, weights))


def read_tensors(stem: str, weights: str | Path | None, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named tensors (buffers such as a template shape) of ``stem``'s weights, float32 numpy.

    Stages read their constants here so that they work the same whichever backend runs the net.

    Raises:
        ModelError: See ``weights_file``; also when a tensor is absent.
    """
    import numpy as np
    from safetensors import safe_open

    path = weights_file(stem, weights)
    with safe_open(str(path), framework="numpy") as handle:
        missing = [n for n in names if n not in handle.keys()]  # noqa: SIM118 - safe_open has no __contains__
        if missing:
            raise ModelError(f"weights '{path}' hold no {missing}; retrain with `facepaint-live train`")
        return {n: np.asarray(handle.get_tensor(n), np.float32) for n in names}


def open_stage_model(stem: str, model: ModelConfig, **override: Any) -> ChosenModel:
    """Open ``stem`` with the backend, device and precision of ``model`` (``override`` replaces any).

    Raises:
        ModelError / BackendUnavailable / EngineMismatch / ConfigError: From the checks and backends.
    """
    from facepaint.engine.backends.choose import BACKEND_FILES, open_model

    settings = {"backend": model.backend, "device": model.device, "precision": model.precision,
                "allow_fp32": model.allow_fp32, **override}
    backend = settings["backend"]
    folder = model_folder(model.weights, stem)
    if backend in ("torch", "auto"):
        weights_file(stem, model.weights)  # the shipped table's check, before any backend reads it
    elif backend in BACKEND_FILES and not (folder / f"{stem}{BACKEND_FILES[backend][0]}").is_file():
        folder = compiled_on_first_use(stem, model.weights, "tensorrt" if backend == "tensorrt" else "onnx",
                                       settings["precision"])
    return open_model(stem, folder, **settings)


def compiled_on_first_use(stem: str, weights: str | Path | None, fmt: str, precision: str | None) -> Path:
    """A cache folder holding ``stem`` compiled to ``fmt`` from its checked safetensors.

    A backend asked for by name whose file is not in the weights folder (the shipped folder holds
    safetensors only) gets it built once into ``cache_root()/models``, keyed by the weights'
    sha256, the format and, for TensorRT, the GPU and precision; later runs reuse it. The build
    happens in a scratch folder renamed into place, so an interrupted build leaves nothing.

    Raises:
        BackendUnavailable: When the compiler of ``fmt`` is not installed (the message names the extra).
        ModelError: See ``weights_file``; also when the export fails.
    """
    import shutil
    import tempfile

    from facepaint.compile.config import CompileConfig  # compile/ builds what the engine runs
    from facepaint.compile.models import check_tools, compile_one
    from facepaint.engine.files import cache_root, sha256_file

    source = weights_file(stem, weights)
    key = f"{stem}-{sha256_file(source)[:16]}-{fmt}"
    if fmt == "tensorrt":
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "nogpu"
        key += f"-{precision or 'fp16'}-" + "".join(c if c.isalnum() else "_" for c in gpu)
    folder = cache_root() / "models" / key
    if folder.is_dir():
        return folder
    check_tools(fmt, verify=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        local = Path(scratch) / source.name
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(source.with_suffix(suffix), local.with_suffix(suffix))
        compile_one(fmt, local, CompileConfig(precision=precision or "fp16"))
        Path(scratch).rename(folder)
        Path(scratch).mkdir()  # TemporaryDirectory removes its (now empty) folder on exit
    return folder


def load_torch(stem: str, weights: str | Path | None = None) -> nn.Module:
    """Model ``stem`` as a float32 torch module on the CPU in eval mode (training, evaluation).

    Raises:
        ModelError: See ``weights_file``; also when the weights do not fit the architecture.
    """
    from facepaint.engine.backends.base import BackendOptions
    from facepaint.engine.backends.torch import TorchBackend

    backend = TorchBackend(BackendOptions(device="cpu", precision="fp32"))
    backend.load(weights_file(stem, weights))
    module = backend.module
    if module is None:
        raise ModelError(f"no module was loaded for {stem}")
    return module


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
    raise ModelError(f"unknown model '{stem}'; known: {', '.join(MODELS)}")


def save_model(folder: str | Path, stem: str, module: nn.Module, config: dict[str, Any],
               training: dict[str, Any]) -> Path:
    """Write ``module`` as ``folder/STEM.safetensors`` (fp16) + ``STEM.json``; returns the safetensors path."""
    from facepaint.engine.backends.spec import save_weights

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return save_weights(module, folder / f"{stem}.safetensors", stage_spec(stem, config, training), half=True)
