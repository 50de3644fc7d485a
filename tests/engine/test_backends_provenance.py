"""Engine provenance headers and the TensorRT backend's checks, all without TensorRT."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from facepaint.compile.cli import _parser as compile_parser
from facepaint.engine.backends.base import BackendOptions
from facepaint.engine.backends.choose import open_model
from facepaint.engine.backends.provenance import (
    EngineHeader,
    EngineTarget,
    ShapeProfile,
    check_header,
    parse_profile,
    read_engine_file,
    rebuild_command,
    write_engine_file,
)
from facepaint.engine.backends.tensorrt import (
    TensorRTBackend,
    check_shape,
    import_tensorrt,
)
from facepaint.engine.errors import (
    BackendUnavailable,
    ConfigError,
    EngineMismatch,
    ModelError,
)
from facepaint.engine.files import sha256_file

PROFILE = ShapeProfile("image", (1, 3, 64, 64), (1, 3, 256, 256), (2, 3, 512, 512))


def header(source: Path, **changes: object) -> EngineHeader:
    base = EngineHeader(tensorrt="10.3.0", gpu_name="NVIDIA GeForce RTX 4090", compute_capability="8.9",
                        precision="fp16", profiles=(PROFILE,), source=str(source),
                        source_sha256=sha256_file(source))
    return dataclasses.replace(base, **changes)


def target_of(h: EngineHeader, **changes: object) -> EngineTarget:
    base = EngineTarget(h.tensorrt, h.gpu_name, h.compute_capability, h.precision, source_sha256=h.source_sha256)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "warp.onnx"
    path.write_bytes(b"not really onnx, only hashed")
    return path


def test_header_round_trip(tmp_path: Path, onnx_file: Path) -> None:
    written = header(onnx_file)
    payload = bytes(range(256)) * 3
    write_engine_file(tmp_path / "warp.engine", written, payload)
    read, body = read_engine_file(tmp_path / "warp.engine")
    assert read == written and body == payload
    check_header(read, target_of(read), tmp_path / "warp.engine")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("tensorrt", "10.5.0", "TensorRT: built for 10.3.0, here 10.5.0"),
    ("gpu_name", "NVIDIA H100 80GB HBM3", "GPU: built for NVIDIA GeForce RTX 4090"),
    ("compute_capability", "9.0", "compute capability: built for 8.9, here 9.0"),
    ("precision", "fp32", "precision: built as fp16, asked for fp32"),
    ("source_sha256", "0" * 64, "built from sha256"),
])
def test_mismatch_is_refused_with_rebuild_command(onnx_file: Path, field: str, value: str, expected: str) -> None:
    h = header(onnx_file)
    with pytest.raises(EngineMismatch) as err:
        check_header(h, target_of(h, **{field: value}), "/models/warp.engine")
    message = str(err.value)
    assert expected in message
    assert f"facepaint-live compile --format tensorrt --model {onnx_file} --out /models" in message
    # The printed command is one the compile command accepts.
    command = message.split("rebuild it: ")[1].split()
    args = compile_parser().parse_args(command[2:])
    assert (args.format, args.model, args.out) == ("tensorrt", onnx_file, Path("/models"))
    assert "--profile image=1x3x64x64:1x3x256x256:2x3x512x512" in message


def test_fp32_engine_accepted_for_fp16_only_when_allowed(onnx_file: Path) -> None:
    h = header(onnx_file, precision="fp32")
    check_header(h, target_of(h, precision="fp16", allow_fp32=True), "e.engine")
    with pytest.raises(EngineMismatch, match="--precision fp16"):
        check_header(h, target_of(h, precision="fp16"), "e.engine")


def test_source_hash_unchecked_when_unknown(onnx_file: Path) -> None:
    h = header(onnx_file)
    check_header(h, target_of(h, source_sha256=None), "e.engine")


def test_bare_or_corrupt_engine_is_a_model_error(tmp_path: Path) -> None:
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="no facepaint provenance header"):
        read_engine_file(bare)
    corrupt = tmp_path / "corrupt.engine"
    corrupt.write_bytes(b"FPENGINE" + (10**6).to_bytes(4, "little") + b"{}")
    with pytest.raises(ModelError, match="corrupt"):
        read_engine_file(corrupt)


def test_profiles_parse_print_and_bound_shapes() -> None:
    assert parse_profile(PROFILE.to_text()) == PROFILE
    assert parse_profile("x=1x4") == ShapeProfile("x", (1, 4), (1, 4), (1, 4))
    for bad in ("image", "image=1x3:1x3", "image=ax3", "image=4:2:3"):
        with pytest.raises(ConfigError):
            parse_profile(bad)
    check_shape("image", (2, 3, 100, 512), PROFILE)
    with pytest.raises(ConfigError, match=r"outside the engine profile.*--profile image="):
        check_shape("image", (1, 3, 1024, 1024), PROFILE)
    with pytest.raises(ConfigError):
        check_shape("image", (1, 3, 64), PROFILE)


def test_rebuild_command_uses_requested_precision(onnx_file: Path) -> None:
    assert "--precision fp32" in rebuild_command(header(onnx_file), "e.engine", "fp32")


def test_missing_tensorrt_is_unavailable(no_tensorrt: None, tmp_path: Path, onnx_file: Path) -> None:
    with pytest.raises(BackendUnavailable, match=r"pip install 'facepaint-live\[tensorrt\]'"):
        import_tensorrt()
    engine = write_engine_file(tmp_path / "warp.engine", header(onnx_file), b"")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        TensorRTBackend(BackendOptions(device="cuda")).load(engine)
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        open_model("warp", tmp_path, "tensorrt", "cuda", precision="fp16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_engine_from_another_gpu_is_refused_on_this_one(tmp_path: Path, onnx_file: Path) -> None:
    pytest.importorskip("tensorrt")
    write_engine_file(tmp_path / "warp.engine", header(onnx_file, gpu_name="Some Other GPU"), b"")
    with pytest.raises(EngineMismatch, match="GPU: built for Some Other GPU"):
        open_model("warp", tmp_path, "tensorrt", "cuda", precision="fp16")


class FakeTRT:
    """The few TensorRT names the backend's binding code reads."""

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    class DataType:
        FLOAT, HALF = "float", "half"


class FakeEngine:
    """One dynamic input ``x`` (N, 4) and one output ``y`` = 2 x."""

    num_io_tensors = 2

    def get_tensor_name(self, index: int) -> str:
        return ("x", "y")[index]

    def get_tensor_mode(self, name: str) -> str:
        return FakeTRT.TensorIOMode.INPUT if name == "x" else FakeTRT.TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (-1, 4)

    def get_tensor_dtype(self, name: str) -> str:
        return FakeTRT.DataType.FLOAT

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        return [(1, 4), (2, 4), (8, 4)]


class FakeContext:
    """Runs y = 2 x on the bound buffers, reading only the prefix of the current shape, as TensorRT does."""

    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.buffers: dict[int, torch.Tensor] = {}
        self.shape_calls = 0

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.shapes[name] = tuple(shape)
        self.shape_calls += 1
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes["x"]

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream: int) -> bool:
        count = self.shapes["x"][0] * self.shapes["x"][1]
        source = self.buffers[self.addresses["x"]].view(-1)[:count]
        self.buffers[self.addresses["y"]].view(-1)[:count] = 2 * source
        return True


def test_bound_buffers_follow_the_shape_and_refuse_outside_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TensorRTBackend(BackendOptions(device="cuda"))
    backend._engine, backend._context = FakeEngine(), FakeContext()
    backend._bind(FakeTRT, torch.device("cpu"), {})
    backend._context.buffers = {b.buffer.data_ptr(): b.buffer for b in (*backend._inputs.values(),
                                                                        *backend._outputs.values())}
    backend._loaded = True
    monkeypatch.setattr(backend, "_stream_handle", lambda: 0)
    assert backend._inputs["x"].buffer.shape == (8, 4) and backend._outputs["y"].buffer.shape == (8, 4)
    for rows in (3, 3, 5, 1):
        x = torch.arange(rows * 4, dtype=torch.float32).reshape(rows, 4)
        torch.testing.assert_close(backend.infer({"x": x})["y"], 2 * x)
    assert backend._context.shape_calls == 1 + 3  # bind at max, then only when the shape changes
    with pytest.raises(ConfigError, match=r"outside the engine profile min \(1, 4\) .. max \(8, 4\)"):
        backend.infer({"x": torch.zeros(9, 4)})
    backend.close()
    assert backend._context is None and not backend._inputs
