"""Compile on first use: the files a render's named backend needs, built before its engine is made.

The shipped weights folder holds safetensors only, so ``--backend onnxruntime`` (or ``tensorrt``,
``tensorrt-rtx``) without a compiled ``--weights`` folder needs its file built once. The session
calls ``compile_on_first_use`` before it constructs the engine (a constructor never compiles);
the files go to ``model_files.compiled_folder`` in the user cache, where the stages look for them,
and later runs reuse them. Each build happens in a scratch folder renamed into place, so an
interrupted build leaves nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from facepaint.compile.config import CompileConfig
from facepaint.compile.models import check_tools, compile_one
from facepaint.engine.backends.base import backend_row
from facepaint.engine.neural.model_files import (
    GENERATOR,
    MIXER,
    MOUTH,
    TRANSFORMER,
    stage_backend,
    stage_folder,
    weights_file,
)

if TYPE_CHECKING:
    from facepaint.engine.reenactment import EngineConfig


def compile_on_first_use(config: EngineConfig) -> list[Path]:
    """Build what ``config``'s neural stages will open and is neither in their weights folder nor
    in the cache; returns the folders built (none when everything is there).

    Raises:
        BackendUnavailable: When the compiler of a format is not installed (the message names the extra).
        ModelError: See ``model_files.weights_file``; also when the export fails.
    """
    model = config.model
    built = []
    for stem, kind in ((TRANSFORMER, config.transformer.kind), (GENERATOR, config.reenactor.kind),
                       (MIXER, config.mixer.kind), (MOUTH, "neural" if config.reenactor.mouth_net else "none")):
        backend = stage_backend(stem, model.backend)
        if kind != "neural" or backend == "auto" or backend_row(backend).exporter is None:
            continue  # auto and torch run what the folder holds: nothing to build, nothing read here
        folder, fmt = stage_folder(stem, model.weights, backend, model.precision)
        if fmt is not None and not folder.is_dir():
            build(stem, model.weights, fmt, model.precision, folder)
            built.append(folder)
    return built


def build(stem: str, weights: str | Path | None, fmt: str, precision: str | None, folder: Path) -> None:
    """Compile ``stem``'s checked safetensors to ``fmt`` into ``folder`` (a scratch folder renamed there).

    Raises:
        BackendUnavailable / ModelError: See ``compile_on_first_use``.
    """
    source = weights_file(stem, weights)
    check_tools(fmt, verify=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        local = Path(scratch) / source.name
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(source.with_suffix(suffix), local.with_suffix(suffix))
        compile_one(fmt, local, CompileConfig(precision=precision or "fp16"))
        Path(scratch).rename(folder)
        Path(scratch).mkdir()  # TemporaryDirectory removes its (now empty) folder on exit
