"""Generator weight files: fp16 safetensors plus a JSON description, sha256-checked at load.

A weights folder holds ``face_generator.safetensors`` and ``face_generator.json`` (the
``GeneratorConfig``, its hash, the file's sha256 and the training step). The shipped pair lives in
this package's ``weights/`` folder and must match ``SHIPPED_SHA256``; a user's folder (``--weights``,
a ``train`` output or its ``weights/`` subfolder) must match the sha256 its own JSON names. Nothing
is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from facepaint.engine.errors import ModelError
from facepaint.engine.files import sha256_file
from facepaint.engine.neural.generator import CoarseToFineGenerator, GeneratorConfig

WEIGHTS_FILE = "face_generator.safetensors"
META_FILE = "face_generator.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
# sha256 of the shipped weights/face_generator.safetensors (docs/MODEL_CARD.md says how it was trained).
SHIPPED_SHA256 = "7462f68ccd67d6efa9a7b0a1a866a3baa673851467450aa269fa49775863a4bb"


def save_weights(folder: Path, gen: CoarseToFineGenerator, extra: dict | None = None) -> Path:
    """Write ``gen`` as fp16 safetensors + JSON into ``folder``; returns the safetensors path."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in gen.state_dict().items()}
    path = folder / WEIGHTS_FILE
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    meta = {"generator": dataclasses.asdict(gen.config), "config_hash": gen.config.digest(),
            "sha256": sha256_file(path), **(extra or {})}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))
    return path


def resolve_weights(weights: str | Path | None) -> tuple[Path, str | None]:
    """(folder holding the weights pair, sha256 it must have; None: take the JSON's).

    Raises:
        ModelError: When the folder has no weights pair.
    """
    if weights is None:
        return SHIPPED_DIR, SHIPPED_SHA256
    folder = Path(weights).expanduser()
    for cand in (folder, folder / "weights"):
        if (cand / WEIGHTS_FILE).is_file() and (cand / META_FILE).is_file():
            return cand, None
    raise ModelError(f"no {WEIGHTS_FILE} with its {META_FILE} in {folder} or {folder / 'weights'}; "
                     "pass a `facepaint-live train` output folder")


def load_generator(weights: str | Path | None, device: str = "cpu") -> CoarseToFineGenerator:
    """The generator from a weights folder (None: the shipped one), in eval mode, float32.

    Raises:
        ModelError: When a file is missing, fails its sha256 or does not fit its architecture.
    """
    from safetensors.torch import load_file

    folder, want = resolve_weights(weights)
    path, meta_path = folder / WEIGHTS_FILE, folder / META_FILE
    if not path.is_file() or not meta_path.is_file():
        raise ModelError(f"the neural reenactor's weights are missing from {folder}; reinstall facepaint-live "
                         "or pass --weights DIR")
    meta = json.loads(meta_path.read_text())
    want = want or meta.get("sha256")
    actual = sha256_file(path)
    if actual != want:
        raise ModelError(f"{path} has sha256 {actual[:16]}..., expected {str(want)[:16]}...; the file is damaged "
                         "or not the one its JSON describes")
    try:
        config = GeneratorConfig(**meta["generator"])
        gen = CoarseToFineGenerator(config)
        gen.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} does not fit the generator described in {meta_path} ({str(exc)[:120]})") from None
    return gen.to(device).eval()

