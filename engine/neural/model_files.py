"""The neural stages' model files, read side: where they are, their checksums, and how a stage opens one.

Every neural model is a stem (``MODELS``) in a folder: ``STEM.safetensors`` (fp16 weights) and
``STEM.json`` (the backends' ``ModelSpec``: architecture, config, inputs, outputs, the weights'
sha256 and how they were trained), and, once ``facepaint-live compile`` has run, ``STEM.onnx`` or
``STEM.engine`` beside them. A stage opens its model through ``engine.backends.choose`` (torch,
onnxruntime, TensorRT, TensorRT-RTX) and reads the spec's config (crop size, constants) from the
JSON and safetensors, whichever backend runs the network. A compiled file that is not in the
weights folder is looked for in the user cache, where ``facepaint.compile.first_use`` builds it
before the engine is made (``runtime.session.open_engine``): a stage never compiles. Training
writes models with ``facepaint.runtime.training.publish``.

The shipped folder is this package's ``weights/``. Its safetensors must also match
``SHIPPED_SHA256``, so a file swapped in an install is refused even when its JSON was edited to
match. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facepaint.engine.backends.base import MODEL_SUFFIXES, PICKLE_SUFFIXES, backend_row, supported_suffixes
from facepaint.engine.backends.spec import ModelSpec, check_weights_sha256, read_spec
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
MOUTH = "mouth_net"
# The networks the product runs, in pipeline order (what `compile` builds). The AU regressor only
# measures the transformer (training loss, evaluation) and is shipped for `eval`; the mouth net
# (``mouth_fill = "neural"``) runs on the CPU inside the reenactor (``stage_backend`` says with what)
# and is compiled on first use like the stages, not by `compile`.
STAGE_MODELS = (TRANSFORMER, GENERATOR, MIXER)
MODELS = (*STAGE_MODELS, AU_REGRESSOR, MOUTH)

# sha256 of the shipped weights (docs/MODEL_CARD.md and docs/NEURAL_LMT_MIXER.md say how they were trained).
SHIPPED_SHA256: dict[str, str] = {
    GENERATOR: "7462f68ccd67d6efa9a7b0a1a866a3baa673851467450aa269fa49775863a4bb",
    TRANSFORMER: "b45d71c7fb3ac9d921686e723233b6dc13ea4e5b04fd6781ce280fcbaf9e2487",
    MIXER: "070730343fb438f1b1d79366e8788352160d63e37ced716f3012610506a5aabf",
    AU_REGRESSOR: "5f4a1d8286853c7657d75768f531e806de8a421bfa6c91a700e796e9b9b4e5a1",
    MOUTH: "496f3ee7375469450ba62f355363eff7911d98d534bd817040387dfc2e7d8ad7",
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
    candidates = (folder, folder / "weights")
    for cand in candidates:
        if any((cand / f"{stem}{suffix}").is_file() for suffix in MODEL_SUFFIXES):
            return cand
    for pickled in (cand / f"{stem}{suffix}" for cand in candidates for suffix in PICKLE_SUFFIXES):
        if pickled.is_file():
            raise ModelError(f"'{pickled}' is a pickled checkpoint, which can run code when loaded, so it is "
                             "refused; convert its state dict to .safetensors "
                             "(facepaint.engine.backends.spec.save_weights) on a machine you trust; "
                             f"supported: {supported_suffixes()}")
    first, *others = MODEL_SUFFIXES
    raise ModelError(f"no {stem}{first} (or {'/'.join(others)}) in {folder} or {folder / 'weights'}; train it "
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


def stage_backend(stem: str, backend: str) -> str:
    """The backend model ``stem`` is opened with under ``--backend backend``: the landmark
    transformer runs on the CPU (``NeuralLandmarkTransformer`` says why), so it keeps a backend
    that runs there (``torch``, ``onnxruntime``) and takes ``auto`` instead of the GPU-only ones
    that serve the image networks."""
    if stem == MOUTH:
        return mouth_backend(backend)
    if stem == TRANSFORMER and backend != "auto" and backend_row(backend).needs_gpu:
        return "auto"
    return backend


def mouth_backend(backend: str) -> str:
    """The backend the mouth net runs with under ``--backend backend``, always on the CPU.

    Its 64 px square is too small for a GPU round trip to pay, and on this CPU onnxruntime runs it in
    about a third of torch's time (1.5 against 4.8 ms, docs/RESULTS.md), so ``auto`` and the GPU-only
    backends take onnxruntime when the onnx extra (onnxruntime and the exporter) is installed and
    torch otherwise; the model's description names the one chosen (stats JSON, HUD).
    """
    if backend == "auto" or backend_row(backend).needs_gpu:
        wanted = ("onnxruntime", "onnx", "onnxscript")
        return "onnxruntime" if all(importlib.util.find_spec(m) for m in wanted) else "torch"
    return backend


def open_mouth_model(model: ModelConfig) -> ChosenModel:
    """The mouth net with ``mouth_backend``'s pick, on the CPU in fp32. Under ``auto`` its ONNX is
    used once it is built (a render builds it first, ``facepaint.compile.first_use``); an engine made
    before that, outside a render, runs torch and the summary says why, as ``auto`` does for a file
    that is not there. A named backend's missing file is an error (``open_stage_model``).

    Raises:
        ModelError / BackendUnavailable: See ``open_stage_model``.
    """
    backend = mouth_backend(model.backend)
    if model.backend == "auto" and backend != "torch":
        folder, fmt = stage_folder(MOUTH, model.weights, backend, "fp32")
        if fmt is not None and not folder.is_dir():
            chosen = open_stage_model(MOUTH, model, backend="torch", device="cpu", precision="fp32")
            return dataclasses.replace(chosen, passed_over=(f"{backend}: not built yet (a render builds it)",))
    # One thread: the 64 px net's layers are too small to share out, and handing them to a second
    # worker cost more than it saved (onnxruntime: 1.8 -> 1.2 ms of process CPU a call, wall the
    # same or better; docs/RESULTS.md, "Mouth net speed").
    return open_stage_model(MOUTH, model, backend=backend, device="cpu", precision="fp32", allow_fp32=True,
                            threads=1)


def stage_folder(stem: str, weights: str | Path | None, backend: str,
                 precision: str | None) -> tuple[Path, str | None]:
    """(the folder ``stem`` is opened from with ``backend``, the ``compile --format`` that builds
    its file there, or None when it is not compiled on first use).

    A backend named with its file missing from the weights folder (the shipped folder holds
    safetensors only) reads it from ``compiled_folder``, which ``facepaint.compile.first_use``
    fills before the engine is made.

    Raises:
        ModelError: See ``model_folder``.
        ConfigError: An unknown backend.
    """
    folder = model_folder(weights, stem)
    if backend == "auto":
        return folder, None
    row = backend_row(backend)
    if row.exporter is None or (folder / f"{stem}{row.suffix}").is_file():
        return folder, None
    return compiled_folder(stem, weights, row.exporter, precision), row.exporter


def compiled_folder(stem: str, weights: str | Path | None, fmt: str, precision: str | None) -> Path:
    """The cache folder of ``stem`` compiled to ``fmt`` from its checked safetensors.

    Keyed by the weights' sha256, the format and, for TensorRT, the precision and the GPU, so a
    changed model or GPU gets a build of its own.

    Raises:
        ModelError: See ``weights_file``.
    """
    from facepaint.engine.files import cache_root, sha256_file

    key = f"{stem}-{sha256_file(weights_file(stem, weights))[:16]}-{fmt}"
    if fmt == "tensorrt":
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "nogpu"
        key += f"-{precision or 'fp16'}-" + "".join(c if c.isalnum() else "_" for c in gpu)
    return cache_root() / "models" / key


def open_stage_model(stem: str, model: ModelConfig, **override: Any) -> ChosenModel:
    """Open ``stem`` with the backend, device and precision of ``model`` (``override`` replaces any).

    Raises:
        ModelError: A compiled file that was not built (``facepaint.compile.first_use``), and
            from the checks and backends.
        BackendUnavailable / EngineMismatch / ConfigError: From the checks and backends.
    """
    from facepaint.engine.backends.choose import open_model

    settings = {"backend": model.backend, "device": model.device, "precision": model.precision,
                "allow_fp32": model.allow_fp32, **override}
    backend = settings["backend"]
    if backend == "auto" or backend_row(backend).exporter is None:  # it may read the safetensors
        weights_file(stem, model.weights)  # the shipped table's check, before any backend reads it
    folder, fmt = stage_folder(stem, model.weights, backend, settings["precision"])
    if fmt is not None and not folder.is_dir():
        raise ModelError(f"{stem}{backend_row(backend).suffix} is not built for --backend {backend}: run "
                         f"`facepaint-live compile --format {fmt} --out DIR` and pass --weights DIR "
                         "(a render builds it on first use)")
    return open_model(stem, folder, **settings)


def load_torch(stem: str, weights: str | Path | None = None) -> nn.Module:
    """Model ``stem`` as a float32 torch module on the CPU in eval mode (training, evaluation).

    Raises:
        ModelError: See ``weights_file``; also when the weights do not fit the architecture.
    """
    from facepaint.engine.backends.choose import open_model
    from facepaint.engine.backends.torch import TorchBackend

    path = weights_file(stem, weights)
    backend = open_model(stem, path.parent, "torch", "cpu", precision="fp32").backend
    if not isinstance(backend, TorchBackend) or backend.module is None:
        raise ModelError(f"no module was loaded for {stem}")
    return backend.module
