"""Backends seam: format table, torch backend, and BackwardWarp against cv2.remap on a real face."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facepaint.engine.backends.base import (
    BACKEND_TABLE,
    MODEL_SUFFIXES,
    Backend,
    BackendOptions,
    auto_order,
    load_object,
)
from facepaint.engine.backends.choose import open_model
from facepaint.engine.backends.modules import BackwardWarp
from facepaint.engine.backends.spec import read_spec, save_weights
from facepaint.engine.backends.torch import TorchBackend
from facepaint.engine.errors import BackendUnavailable, ConfigError, ModelError
from facepaint.engine.files import sha256_file
from facepaint.engine.neural.model_files import GENERATOR, open_stage_model
from facepaint.engine.stages import BACKENDS, ModelConfig
from fakes import backward_warp_spec, image_to_tensor, maps_to_tensor


def smooth_map(height: int, width: int, seed: int = 0, amplitude: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Identity map plus a smooth random displacement that also reaches past the borders."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-amplitude, amplitude, size=(5, 5, 2)).astype(np.float32)
    shift = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + shift[..., 0], ys + shift[..., 1]


@pytest.fixture
def warp_weights(tmp_path: Path) -> Path:
    """BackwardWarp saved in the torch format (empty safetensors + model.json)."""
    return save_weights(BackwardWarp(), tmp_path / "warp.safetensors", backward_warp_spec((48, 40)))


def _open(path: Path, backend: str = "torch", device: str = "cpu", precision: str | None = None,
          allow_fp32: bool = False) -> Backend:
    """``path`` opened through the product's loader (``open_model``: its stem in its folder)."""
    return open_model(path.stem, path.parent, backend, device, precision, allow_fp32).backend


def test_the_backend_table_is_the_one_list() -> None:
    """Checked as properties, so that a new backend is one row here and no edit of this test."""
    names = [row.name for row in BACKEND_TABLE]
    ranks = [row.auto_rank for row in BACKEND_TABLE]
    assert len(set(names)) == len(names) and len(set(ranks)) == len(ranks)
    assert BACKENDS == (*names, "auto")  # --backend's choices
    assert MODEL_SUFFIXES[:3] == (".safetensors", ".onnx", ".engine")
    assert set(MODEL_SUFFIXES) == {row.suffix for row in BACKEND_TABLE}
    for row in BACKEND_TABLE:
        assert row.backend.startswith("facepaint.engine.backends.")
        assert (row.exporter is None) == (row.suffix == ".safetensors")  # only the trained weights are not compiled
    assert not any(row.needs_gpu for row in auto_order(cuda=False))
    assert [row.auto_rank for row in auto_order(cuda=True)] == sorted(ranks)
    # What auto does today, fastest first (README): the TensorRT builds on CUDA, onnxruntime on the CPU.
    known = ["tensorrt", "tensorrt-rtx", "onnxruntime", "torch"]
    assert [row.name for row in auto_order(cuda=True) if row.name in known] == known
    assert [row.name for row in auto_order(cuda=False) if row.name in known] == ["onnxruntime", "torch"]


def test_backend_table_classes_resolve() -> None:
    # Importing a backend module must not need its runtime (TensorRT is imported lazily).
    for row in BACKEND_TABLE:
        assert callable(load_object(row.backend))


def test_a_weights_folder_without_a_model_lists_the_supported_suffixes(tmp_path: Path) -> None:
    (tmp_path / f"{GENERATOR}.h5").write_bytes(b"\0")
    with pytest.raises(ModelError) as err:
        open_stage_model(GENERATOR, ModelConfig(weights=str(tmp_path)))
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message
    for suffix in MODEL_SUFFIXES:
        assert suffix in message


def test_an_unknown_backend_lists_the_known_ones(warp_weights: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _open(warp_weights, "no-such-backend")
    assert all(name in str(err.value) for name in BACKENDS)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="device"):
        BackendOptions(device="gpu")
    with pytest.raises(ConfigError, match="precision"):
        BackendOptions(precision="int8")
    with pytest.raises(ConfigError, match="threads"):
        BackendOptions(threads=-1)


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx"])
def test_gpu_backend_on_cpu_is_refused(warp_weights: Path, backend: str) -> None:
    with pytest.raises(ConfigError, match="--device cuda"):
        _open(warp_weights, backend, "cpu")


def test_torch_backend_loads_and_matches_module(warp_weights: Path) -> None:
    image, grid = torch.rand(2, 3, 30, 36), torch.rand(2, 48, 40, 2) * 40 - 2
    with _open(warp_weights) as backend:
        assert isinstance(backend, Backend) and isinstance(backend, TorchBackend)
        assert backend.input_names == ("image", "backward_map") and backend.output_names == ("warped",)
        out = backend.infer({"image": image, "backward_map": grid})
    torch.testing.assert_close(out["warped"], BackwardWarp()(image, grid))
    spec = read_spec(warp_weights)
    assert dataclasses.replace(spec, weights_sha256=None) == backward_warp_spec((48, 40))
    assert spec.weights_sha256 == sha256_file(warp_weights)


def test_close_runs_once_and_infer_after_close_fails(warp_weights: Path) -> None:
    backend = TorchBackend()
    with pytest.raises(ModelError, match="load"):
        backend.infer({})
    backend.load(warp_weights)
    with pytest.raises(ConfigError, match="backward_map"):
        backend.infer({"image": torch.zeros(1, 3, 4, 4)})
    backend.close()
    backend.close()
    assert backend.module is None
    with pytest.raises(ModelError, match="closed"):
        backend.infer({"image": torch.zeros(1, 3, 4, 4), "backward_map": torch.zeros(1, 4, 4, 2)})


def test_fp16_on_cpu_is_refused_unless_allowed(warp_weights: Path) -> None:
    with pytest.raises(BackendUnavailable, match="allow_fp32"):
        _open(warp_weights, precision="fp16")
    with _open(warp_weights, precision="fp16", allow_fp32=True) as backend:
        assert backend.dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda_is_unavailable(warp_weights: Path) -> None:
    with pytest.raises(BackendUnavailable, match="CUDA"):
        _open(warp_weights, device="cuda")


def test_missing_config_and_wrong_weights_are_model_errors(tmp_path: Path, warp_weights: Path) -> None:
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(warp_weights.read_bytes())
    with pytest.raises(ModelError, match="lonely.json"):
        _open(lonely)
    spec = warp_weights.with_suffix(".json")
    spec.write_text(spec.read_text().replace("backward_warp", "no_such_net"))
    with pytest.raises(ModelError, match="backward_warp"):
        _open(warp_weights)


def test_backward_warp_matches_cv2_remap_on_a_face(astronaut: np.ndarray) -> None:
    image = astronaut.astype(np.float32) / 255.0
    map_x, map_y = smooth_map(*image.shape[:2])
    want = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    with torch.inference_mode():
        got = BackwardWarp()(image_to_tensor(astronaut), maps_to_tensor(map_x, map_y))
    diff = np.abs(got[0].permute(1, 2, 0).numpy() - want)
    # cv2.remap quantises coordinates to 1/32 pixel; grid_sample does not: a small mean gap remains.
    assert diff.mean() < 1 / 255, diff.mean()
    assert diff.max() < 8 / 255, diff.max()
    assert (map_x < 0).any() and (map_x > image.shape[1] - 1).any()  # border handling was exercised


def test_backward_warp_identity_and_other_source_size() -> None:
    image = torch.rand(1, 3, 20, 30)
    ys, xs = torch.meshgrid(torch.arange(20.0), torch.arange(30.0), indexing="ij")
    identity = torch.stack([xs, ys], dim=-1)[None]
    torch.testing.assert_close(BackwardWarp()(image, identity), image, atol=1e-5, rtol=0)
    half = identity[:, ::2, ::2]
    torch.testing.assert_close(BackwardWarp()(image, half), image[:, :, ::2, ::2], atol=1e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("fp16", 5e-3)])
def test_torch_cuda_matches_cpu(warp_weights: Path, astronaut: np.ndarray, precision: str, atol: float) -> None:
    map_x, map_y = smooth_map(*astronaut.shape[:2])
    inputs = {"image": image_to_tensor(astronaut), "backward_map": maps_to_tensor(map_x, map_y)}
    with _open(warp_weights) as cpu, _open(warp_weights, "torch", "cuda", precision=precision) as gpu:
        want = cpu.infer(inputs)["warped"]
        got = gpu.infer({k: v.cuda() for k, v in inputs.items()})["warped"]
    assert got.device.type == "cuda" and got.dtype == torch.float32
    assert (got.cpu() - want).abs().max().item() < atol


def tiny_conv(channels: int = 3) -> torch.nn.Module:
    """A registered-by-test architecture with real weights."""
    return torch.nn.Conv2d(3, channels, kernel_size=3, padding=1)


def test_weights_are_loaded_strictly(tmp_path: Path) -> None:
    from facepaint.engine.backends.spec import ModelSpec, TensorSpec

    torch.manual_seed(0)
    module = tiny_conv()
    spec = ModelSpec("tiny_conv", {"channels": 3}, (TensorSpec("image", (1, 3, 8, 8)),), ("features",))
    weights = save_weights(module, tmp_path / "conv.safetensors", spec)
    x = torch.rand(2, 3, 8, 8)
    with TorchBackend(architectures={"tiny_conv": tiny_conv}) as backend:
        backend.load(weights)
        torch.testing.assert_close(backend.infer({"image": x})["features"], module(x).detach())
    wrong = save_weights(tiny_conv(4), tmp_path / "wrong.safetensors", spec)
    with pytest.raises(ModelError, match="do not fit architecture 'tiny_conv'"):
        TorchBackend(architectures={"tiny_conv": tiny_conv}).load(wrong)
