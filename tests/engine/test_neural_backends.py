"""The neural stages compiled to ONNX and run by onnxruntime, against torch, on real faces.

``facepaint-live compile --format onnx --out DIR --verify`` writes every stage model; each ONNX
module is held to torch on the inputs its stage builds from a real portrait and driving frames,
and the engine run with ``--weights DIR --backend onnxruntime`` renders what torch renders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facepaint.compile.cli import main as compile_main
from facepaint.compile.first_use import compile_on_first_use
from facepaint.engine.backends.base import BackendOptions
from facepaint.engine.backends.onnx import OnnxBackend
from facepaint.engine.backends.torch import TorchBackend
from facepaint.engine.config import build_config
from facepaint.engine.errors import BackendUnavailable, ModelError
from facepaint.engine.neural.align import apply_affine
from facepaint.engine.neural.model_files import (
    GENERATOR,
    MIXER,
    STAGE_MODELS,
    TRANSFORMER,
    open_stage_model,
    shipped_dir,
)
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# Outputs are images in [-1, 1] / [0, 1] and landmark offsets of ~0.1: onnxruntime and torch
# differ by float rounding only (measured: up to 1.2e-5 on the generator).
ATOL = 1e-4


def _engine(s42, weights: str | None = None, backend: str = "torch") -> ReenactmentEngine:
    config = build_config(EngineConfig, {"transformer": {"kind": "neural"}, "reenactor": {"kind": "neural"},
                                         "mixer": {"kind": "neural"},
                                         "model": {"weights": weights, "backend": backend}})
    return ReenactmentEngine(config, *s42)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("onnx")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert compile_main(["--format", "onnx", "--out", str(out), "--verify"]) == 0
    return out, stdout.getvalue().splitlines()


def test_compile_writes_every_stage_model_checked_against_torch(compiled) -> None:
    out, lines = compiled
    assert [line.split(":")[0] for line in lines] == list(STAGE_MODELS)
    for stem, line in zip(STAGE_MODELS, lines, strict=True):
        assert (out / f"{stem}.onnx").is_file() and (out / f"{stem}.safetensors").is_file()
        assert float(line.rsplit(" ", 1)[1].rstrip(")")) <= ATOL


def _real_inputs(engine: ReenactmentEngine, frame, face) -> dict[str, dict[str, torch.Tensor]]:
    """Each network's inputs as its stage builds them for one driving frame."""
    engine.render(frame, face, 0.0)
    target = engine.transformer.transform(face)
    reenactor, mixer, transformer = engine.reenactor, engine.mixer, engine.transformer
    x, _ = reenactor._input(apply_affine(reenactor.matrix, target.landmarks))
    reenacted = reenactor.render(target, None, None)
    au = torch.as_tensor(np.asarray(face.au, np.float32))[None]
    return {TRANSFORMER: {"source": transformer._src, "au": au}, GENERATOR: {"x": x},
            MIXER: mixer.net_inputs(reenacted)}


@pytest.mark.parametrize("stem", STAGE_MODELS)
def test_each_module_matches_torch_on_real_inputs(compiled, s42, driving, stem: str) -> None:
    with _engine(s42) as engine:
        inputs = _real_inputs(engine, *driving["open"])[stem]
    options = BackendOptions(device="cpu")
    with TorchBackend(options) as ours, OnnxBackend(options) as theirs:
        ours.load(shipped_dir() / f"{stem}.safetensors")
        theirs.load(compiled[0] / f"{stem}.onnx")
        want, got = ours.infer(inputs), theirs.infer(inputs)
    assert list(got) == list(want)
    for name in want:
        assert got[name].shape == want[name].shape
        assert float((got[name] - want[name]).abs().max()) <= ATOL, name


def test_engine_on_onnxruntime_renders_what_torch_renders(compiled, s42, driving) -> None:
    frames = {}
    for backend in ("torch", "onnxruntime"):
        weights = None if backend == "torch" else str(compiled[0])
        with _engine(s42, weights, backend) as engine:
            assert all(f"{backend} on cpu" in line for line in engine.models)
            engine.render(*driving["neutral"], 0.0)
            frames[backend] = engine.render(*driving["open"], 0.1).astype(np.int16)
    diff = np.abs(frames["torch"] - frames["onnxruntime"])
    assert diff.mean() < 0.05 and diff.max() <= 2


def test_auto_takes_onnxruntime_where_compiled_and_says_what_it_passed_over(compiled, s42) -> None:
    with _engine(s42, str(compiled[0]), "auto") as engine:
        assert engine.models == tuple(f"{stem}: onnxruntime on cpu" for stem in STAGE_MODELS)
    with _engine(s42, None, "auto") as engine:
        assert f"{GENERATOR}: torch on cpu (auto; onnxruntime: no {GENERATOR}.onnx)" in engine.models


def test_a_named_backend_builds_its_file_on_first_use_into_the_cache(s42, monkeypatch, tmp_path,
                                                                     no_tensorrt) -> None:
    """The shipped folder holds safetensors only: ``--backend onnxruntime`` makes the session
    export the ONNX once into the user cache before it builds the engine (whose stages only read
    it), and later runs reuse it; TensorRT, not installed here, is refused naming its extra before
    anything is written."""
    monkeypatch.setenv("FACEPAINT_CACHE", str(tmp_path))
    config = build_config(EngineConfig, {"reenactor": {"kind": "neural"}, "model": {"backend": "onnxruntime"}})
    with pytest.raises(ModelError, match=r"not built for --backend onnxruntime.*compile --format onnx"):
        open_stage_model(GENERATOR, config.model)  # a stage never compiles
    assert not (tmp_path / "facepaint-live").exists()
    built = compile_on_first_use(config)
    first = open_stage_model(GENERATOR, config.model)
    first.backend.close()
    assert built == [first.path.parent] and first.name == "onnxruntime"
    assert first.path.parent.parent == tmp_path / "facepaint-live" / "models"
    stamp = first.path.stat().st_mtime_ns
    assert compile_on_first_use(config) == []
    again = open_stage_model(GENERATOR, config.model)
    again.backend.close()
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    tensorrt = build_config(EngineConfig, {"reenactor": {"kind": "neural"},
                                           "model": {"backend": "tensorrt", "device": "cpu"}})
    with pytest.raises(BackendUnavailable, match=r"facepaint-live\[tensorrt\]"):
        compile_on_first_use(tensorrt)
    assert sorted(p.name for p in first.path.parent.parent.iterdir()) == [first.path.parent.name]


def test_a_render_with_a_named_backend_builds_its_file_before_the_engine(media, monkeypatch, tmp_path) -> None:
    """The product's path: ``--backend onnxruntime`` on the shipped weights renders, the session
    having built the generator's ONNX into the cache (``open_engine``) before the engine read it."""
    from facepaint.runtime.cli import main

    monkeypatch.setenv("FACEPAINT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out.png"
    code = main(["--source", str(media / "portraits" / "lp_s42.jpg"), "--driving",
                 str(media / "portraits" / "biden2.jpg"), "--reenactor", "neural", "--backend", "onnxruntime",
                 "--output", str(out), "--quiet"])
    assert code == 0 and out.is_file()
    built = list((tmp_path / "cache" / "facepaint-live" / "models").iterdir())
    assert len(built) == 1 and built[0].name.startswith(f"{GENERATOR}-") and built[0].name.endswith("-onnx")
    assert (built[0] / f"{GENERATOR}.onnx").is_file()


def test_fp16_on_the_cpu_is_refused_naming_the_flags(s42) -> None:
    config = build_config(EngineConfig, {"reenactor": {"kind": "neural"}, "model": {"precision": "fp16"}})
    with pytest.raises(BackendUnavailable, match="--allow-fp32"):
        ReenactmentEngine(config, *s42)


def test_neural_reenactor_keeps_the_background_still(s42, driving) -> None:
    """The reenactor hands the mixer a person mask (the generator's face + hair inside its square,
    the warped head mask outside), so the head moves over the still, person-removed background."""
    import cv2

    config = build_config(EngineConfig, {"reenactor": {"kind": "neural"}})
    with ReenactmentEngine(config, *s42) as engine:
        engine.render(*driving["neutral"], 0.0)
        target = engine.transformer.transform(driving["open"][1])
        reenacted = engine.reenactor.render(target, None, None)
        crop = engine.mixer.mix(reenacted)
        background = engine.source.background
    mask = reenacted.mask
    assert mask is not None and mask.shape == crop.shape[:2]
    h, w = mask.shape
    assert mask[h // 2, w // 2] > 0.9 and max(mask[2, 2], mask[2, w - 3]) < 0.1
    # Away from the person (mask grown by the feather), the crop is the background itself.
    far = cv2.dilate((mask > 0.01).astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
    assert far.mean() > 0.1
    assert np.abs(crop[far].astype(int) - background[far]).mean() < 1.0


def test_the_device_path_wired_into_the_reenactor_renders_like_the_host_path(s42, driving) -> None:
    """``--device cuda`` switches the reenactor to ``device_path``; the same torch ops run on the
    CPU here, so the wiring is checked against the numpy path (tolerances: test_device_path.py)."""
    config = build_config(EngineConfig, {"reenactor": {"kind": "neural"}})
    with ReenactmentEngine(config, *s42) as engine:
        engine.render(*driving["neutral"], 0.0)
        target = engine.transformer.transform(driving["open"][1])
        host = engine.reenactor.render(target, None, None)
        engine.reenactor.use_device_path("cpu")  # warmed up here, eagerly: graphs are CUDA only
        assert engine.reenactor._device is not None and engine.reenactor._device.graph is None
        device = engine.reenactor.render(target, None, None)
        device_image = device.image.copy()  # a ring slot: the next renders reuse it
        # The device path gets the geometric paint too, with the driver's mouth interior.
        painted = engine.reenactor.render(target, driving["open"][0], driving["open"][1].landmarks)
        frame = engine.render(*driving["blink"], 0.1)
    assert painted.mouth_alpha > 0.5 and np.abs(painted.image.astype(int) - device_image).max() > 30
    diff = np.abs(host.image.astype(int) - device_image)
    assert diff.mean() < 0.2 and diff.max() <= 6
    assert host.mask is not None and device.mask is not None
    assert np.abs(host.mask - device.mask).max() < 0.05
    assert frame.shape == s42[0].shape


def test_a_generator_handing_back_host_tensors_keeps_the_host_path_on_cuda(s42, monkeypatch) -> None:
    """onnxruntime hands its outputs back in host memory on every provider, so on CUDA the
    reenactor keeps the numpy path (the device path would mix devices): the backend's
    ``output_device`` decides, not the device asked for. Shown without a GPU: the shipped torch
    generator on the CPU, reported as chosen for cuda."""
    import dataclasses

    from facepaint.engine.face_reenactor import ReenactorConfig
    from facepaint.engine.neural import face_reenactor as module
    from facepaint.engine.source_face import SourceConfig, prepare_source
    from facepaint.engine.stages import ModelConfig

    real = module.open_stage_model
    monkeypatch.setattr(module, "open_stage_model",
                        lambda stem, model: dataclasses.replace(real(stem, model), device="cuda"))
    reenactor = module.NeuralFaceReenactor(prepare_source(*s42, SourceConfig()), ReenactorConfig(), ModelConfig())
    assert reenactor.chosen.device == "cuda" and reenactor.chosen.backend.output_device == "cpu"
    assert reenactor._device is None
    reenactor.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_neural_stages_on_cuda_fp16_render_what_the_cpu_renders(s42, driving) -> None:
    """``--device cuda``: the generator and mixer in fp16 on the GPU, the landmark MLP on the CPU."""
    frames, models = {}, {}
    for device in ("cpu", "cuda"):
        config = build_config(EngineConfig, {"transformer": {"kind": "neural"}, "reenactor": {"kind": "neural"},
                                             "mixer": {"kind": "neural"}, "model": {"device": device}})
        with ReenactmentEngine(config, *s42) as engine:
            models[device] = engine.models
            on_device = engine.reenactor._device
            # The step is captured as a CUDA graph by the constructor, not on the first frame.
            assert (on_device is not None and on_device.graph is not None) == (device == "cuda")
            engine.render(*driving["neutral"], 0.0)
            frames[device] = engine.render(*driving["open"], 0.1).astype(np.int16)
    assert f"{GENERATOR}: torch on cuda" in models["cuda"] and f"{TRANSFORMER}: torch on cpu" in models["cuda"]
    diff = np.abs(frames["cpu"] - frames["cuda"])
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8  # fp16 rounding of a [-1, 1] image
