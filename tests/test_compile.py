"""compile/: ONNX export checked against torch, the backend table's round trip, CLI errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facepaint.compile.cli import _parser as compile_parser
from facepaint.compile.cli import main as compile_main
from facepaint.compile.config import CompileConfig
from facepaint.compile.models import COMPILED_FORMATS, compile_one
from facepaint.compile.onnx import export_onnx
from facepaint.compile.tensorrt import build_engine, choose_precision
from facepaint.engine.backends.base import BACKEND_TABLE, Backend
from facepaint.engine.backends.choose import open_model
from facepaint.engine.backends.modules import BackwardWarp
from facepaint.engine.backends.onnx import OnnxBackend
from facepaint.engine.backends.provenance import ShapeProfile
from facepaint.engine.backends.spec import save_weights
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError
from fakes import backward_warp_spec, image_to_tensor, maps_to_tensor

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def face_inputs(astronaut: np.ndarray, size: int) -> dict[str, torch.Tensor]:
    """The astronaut at full size, warped into a ``size`` square by a smooth map reaching past the borders."""
    import cv2

    rng = np.random.default_rng(1)
    coarse = rng.uniform(-30, 30, size=(4, 4, 2)).astype(np.float32)
    shift = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) * (astronaut.shape[0] / size)
    return {"image": image_to_tensor(astronaut), "backward_map": maps_to_tensor(xs + shift[..., 0], ys + shift[..., 1])}


def _open(path: Path, backend: str, device: str = "cpu", precision: str | None = None,
          allow_fp32: bool = False) -> Backend:
    """``path`` opened through the product's loader (``open_model``: its stem in its folder)."""
    return open_model(path.stem, path.parent, backend, device, precision, allow_fp32).backend


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """BackwardWarp in the torch format, compiled to ONNX as `compile --format onnx --verify` does (one export)."""
    folder = tmp_path_factory.mktemp("warp")
    weights = save_weights(BackwardWarp(), folder / "warp.safetensors", backward_warp_spec((40, 48), (64, 56)))
    compiled = compile_one("onnx", weights, CompileConfig(), verify=True)
    assert compiled.path == folder / "warp.onnx" and compiled.max_abs_diff is not None
    return weights, compiled.path


def test_compile_formats_are_the_backend_tables_exporters() -> None:
    exporters = {row.exporter for row in BACKEND_TABLE if row.exporter}
    assert set(COMPILED_FORMATS) == exporters and len(COMPILED_FORMATS) == len(exporters)
    fmt = next(a for a in compile_parser()._actions if a.dest == "format")
    assert tuple(fmt.choices or ()) == COMPILED_FORMATS


def test_round_trip_torch_to_onnx_through_the_loader(exported: tuple[Path, Path], astronaut: np.ndarray) -> None:
    weights, onnx_path = exported
    inputs = face_inputs(astronaut, 160)  # other sizes than the export's example: dynamic axes work
    with _open(weights, "torch") as torch_backend, _open(onnx_path, "onnxruntime") as onnx_backend:
        assert isinstance(onnx_backend, OnnxBackend)
        assert onnx_backend.input_names == torch_backend.input_names
        assert onnx_backend.output_names == torch_backend.output_names
        want = torch_backend.infer(inputs)["warped"]
        got = onnx_backend.infer(inputs)["warped"]
    assert not Path(f"{onnx_path}.data").exists()  # one file, so its sha256 covers the weights
    assert got.shape == (1, 3, 160, 160) and got.dtype == torch.float32
    assert (got - want).abs().max().item() < 1e-4


def test_export_onnx_reports_diff_and_time(tmp_path: Path, exported: tuple[Path, Path],
                                           astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reuse the exported graph so that this test checks export_onnx's bookkeeping, not the exporter again.
    monkeypatch.setattr(torch.onnx, "export", lambda module, args, f, **kw: shutil.copy(exported[1], f))
    inputs = face_inputs(astronaut, 96)
    result = export_onnx(BackwardWarp(), inputs, tmp_path / "w.onnx", output_names=["warped"])
    assert result.path.is_file() and 0 <= result.max_abs_diff < 1e-4 and result.export_seconds >= 0


def test_export_onnx_mismatch_is_an_error(tmp_path: Path, exported: tuple[Path, Path],
                                          astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    class Brighter(BackwardWarp):
        def forward(self, image: torch.Tensor, backward_map: torch.Tensor) -> torch.Tensor:
            return super().forward(image, backward_map) + 0.01

    monkeypatch.setattr(torch.onnx, "export", lambda module, args, f, **kw: shutil.copy(exported[1], f))
    with pytest.raises(ModelError, match=r"disagrees with torch: max \|onnxruntime - torch\| = 0.01"):
        export_onnx(Brighter(), face_inputs(astronaut, 32), tmp_path / "w.onnx", output_names=["warped"])
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(BackwardWarp(), {}, tmp_path / "w.onnx", output_names=["warped"], opset=15)


def test_onnx_cuda_without_provider_lists_available(exported: tuple[Path, Path]) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(BackendUnavailable, match="available providers: .*CPUExecutionProvider"):
        _open(exported[1], "onnxruntime", "cuda")


def test_onnx_fp16_of_fp32_model_needs_allow_fp32(exported: tuple[Path, Path]) -> None:
    with pytest.raises(BackendUnavailable, match="fp32 ONNX model"):
        _open(exported[1], "onnxruntime", precision="fp16")
    with _open(exported[1], "onnxruntime", precision="fp16", allow_fp32=True) as backend:
        assert backend.input_types["image"] == "tensor(float)"


def test_compile_config_is_strict() -> None:
    config = CompileConfig(profiles=("image=1x3x8x8:1x3x64x64:1x3x128x128",))
    assert config.profiles[0] == ShapeProfile("image", (1, 3, 8, 8), (1, 3, 64, 64), (1, 3, 128, 128))
    with pytest.raises(ConfigError, match="opset"):
        CompileConfig(opset=13)
    with pytest.raises(ConfigError, match="precision"):
        CompileConfig(precision="int8")


def test_choose_precision_never_falls_back_silently() -> None:
    assert choose_precision("fp16", has_fast_fp16=True, allow_fp32=False) == "fp16"
    assert choose_precision("fp32", has_fast_fp16=False, allow_fp32=False) == "fp32"
    assert choose_precision("fp16", has_fast_fp16=False, allow_fp32=True) == "fp32"
    with pytest.raises(BackendUnavailable, match="--allow-fp32"):
        choose_precision("fp16", has_fast_fp16=False, allow_fp32=False)


def test_build_engine_without_tensorrt_is_unavailable(no_tensorrt: None, exported: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match=r"facepaint-live\[tensorrt\]"):
        build_engine(exported[1], tmp_path / "w.engine")
    for source in (["--model", str(exported[1])], []):  # one file, and the shipped stage models
        with pytest.raises(SystemExit) as exit_info:
            compile_main(["--format", "tensorrt", *source, "--out", str(tmp_path / "engines"),
                          "--profile", "image=1x3x8x8:1x3x64x64:1x3x128x128"])
        assert exit_info.value.code == 2
        assert not (tmp_path / "engines").exists()  # refused before anything was written


def test_cli_refuses_a_source_of_the_wrong_format(exported: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        compile_main(["--format", "onnx", "--model", str(exported[1]), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "onnx is compiled from .safetensors models" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-3), ("fp16", 2e-2)])
def test_tensorrt_engine_matches_torch(exported: tuple[Path, Path], astronaut: np.ndarray, tmp_path: Path,
                                       precision: str, atol: float) -> None:
    pytest.importorskip("tensorrt")
    profiles = ("image=1x3x64x64:1x3x512x512:1x3x512x512", "backward_map=1x16x16x2:1x160x160x2:1x256x256x2")
    config = CompileConfig(precision=precision, profiles=profiles)
    local = tmp_path / exported[1].name
    shutil.copyfile(exported[1], local)
    engine = compile_one("tensorrt", local, config).path
    inputs = face_inputs(astronaut, 160)
    with _open(exported[0], "torch") as reference, _open(engine, "tensorrt", "cuda", precision) as trt:
        want = reference.infer(inputs)["warped"]
        got = trt.infer({k: v.cuda() for k, v in inputs.items()})["warped"]
        torch.cuda.synchronize()
        assert (got.float().cpu() - want).abs().max().item() < atol
        with pytest.raises(ConfigError, match="outside the engine profile"):
            trt.infer({k: v.cuda() for k, v in face_inputs(astronaut, 300).items()})


@pytest.mark.parametrize("which", ["torch", "onnx"])
def test_cpu_backends_hand_over_fresh_cpu_outputs(exported: tuple[Path, Path], which: str) -> None:
    """The output contract: torch and onnxruntime outputs belong to the caller (a second infer
    leaves the first result alone) and live on the CPU; only TensorRT reuses its buffers."""
    from facepaint.engine.backends.tensorrt import TensorRTBackend

    path = exported[0] if which == "torch" else exported[1]
    image, grid = torch.rand(1, 3, 30, 36), torch.rand(1, 48, 40, 2) * 30
    with _open(path, "torch" if which == "torch" else "onnxruntime") as backend:
        assert backend.output_device == "cpu" and backend.outputs_reused is False
        first = backend.infer({"image": image, "backward_map": grid})["warped"]
        kept = first.clone()
        backend.infer({"image": torch.rand(1, 3, 30, 36), "backward_map": grid})
        torch.testing.assert_close(first, kept)
        assert first.device.type == "cpu" and first.dtype == torch.float32
    assert TensorRTBackend.outputs_reused is True


def test_precision_comes_from_the_engine_header_and_a_given_one_only_checks_it() -> None:
    from facepaint.engine.backends.provenance import EngineHeader, EngineTarget, mismatches

    header = EngineHeader(tensorrt="10.9", gpu_name="H100", compute_capability="9.0", precision="fp16",
                          profiles=(), source="warp.onnx", source_sha256="a" * 64)
    here = {"tensorrt": "10.9", "gpu_name": "H100", "compute_capability": "9.0"}
    assert mismatches(header, EngineTarget(**here, precision=None)) == []  # default: the engine's own
    assert mismatches(header, EngineTarget(**here, precision="fp16")) == []
    assert mismatches(header, EngineTarget(**here, precision="fp32")) == ["precision: built as fp16, asked for fp32"]


def _only(tmp_path: Path, *files: Path) -> Path:
    """A folder holding copies of ``files`` (a weights folder as --weights DIR names it)."""
    for f in files:
        shutil.copy(f, tmp_path / f.name)
        if f.suffix == ".safetensors":
            shutil.copy(f.with_suffix(".json"), tmp_path / f.with_suffix(".json").name)
    return tmp_path


def test_auto_picks_onnxruntime_on_cpu_and_says_what_it_passed_over(exported: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    (tmp_path / "both").mkdir()
    chosen = open_model("warp", _only(tmp_path / "both", *exported), "auto", "auto")
    with chosen.backend:
        assert (chosen.name, chosen.device, chosen.passed_over) == ("onnxruntime", "cpu", ())
    (tmp_path / "torch").mkdir()
    chosen = open_model("warp", _only(tmp_path / "torch", exported[0]), "auto", "cpu")
    with chosen.backend:
        assert chosen.name == "torch" and chosen.passed_over == ("onnxruntime: no warp.onnx",)
        assert chosen.describe() == "warp: torch on cpu (auto; onnxruntime: no warp.onnx)"


def test_named_backends_never_fall_back_and_name_their_extra(exported: tuple[Path, Path], tmp_path: Path) -> None:
    folder = _only(tmp_path, *exported)
    with pytest.raises(ModelError, match="warp.engine, which does not exist"):
        open_model("warp", folder, "tensorrt", "cuda")
    (folder / "warp.engine").write_bytes(b"not an engine")
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed.*facepaint-live\[tensorrt\]"):
        open_model("warp", folder, "tensorrt", "cuda")
    with pytest.raises(BackendUnavailable, match=r"facepaint-live\[rtx\]"):
        open_model("warp", folder, "tensorrt-rtx", "cuda")
    for gpu_only in ("tensorrt", "tensorrt-rtx"):  # the table's needs_gpu, before any file or runtime
        with pytest.raises(ConfigError, match=f"{gpu_only} runs on CUDA only; got device 'cpu'.*--device cuda"):
            open_model("warp", folder, gpu_only, "cpu")
    with pytest.raises(BackendUnavailable, match="auto found no way to run gen.*onnxruntime: no gen.onnx; torch"):
        open_model("gen", folder, "auto", "cpu")


def test_fp16_warm_up_guard_names_fp32() -> None:
    from facepaint.engine.backends.choose import check_warm_up

    check_warm_up({"rgb": torch.rand(1, 3, 8, 8)}, "fp16", "generator")
    with pytest.raises(BackendUnavailable, match="NaN or infinite.*--precision fp32"):
        check_warm_up({"rgb": torch.full((1, 3, 8, 8), float("nan"))}, "fp16", "generator")
    with pytest.raises(BackendUnavailable, match="all-black image.*--precision fp32"):
        check_warm_up({"rgb": torch.zeros(1, 3, 8, 8)}, None, "generator")
