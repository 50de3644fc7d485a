"""The mouth net's interior (``mouth_fill = "neural"``) keeps the portrait's colours (issue 20)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facepaint.compile.first_use import compile_on_first_use
from facepaint.engine.face_reenactor import ReenactorConfig
from facepaint.engine.mouth import mouth_alpha
from facepaint.engine.neural.model_files import mouth_backend, open_mouth_model
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.stages import ModelConfig
from facepaint.runtime.evaluation.mouth import greyscale, warm


def _net_mouth(image, face, driving, frame, backend: str = "torch"):
    """(output crop, bool mask of the target inner mouth, largest alpha) of ``image`` driven open
    by ``frame`` (None: an expression edit) with the mouth net run by ``backend``."""
    config = EngineConfig(reenactor=ReenactorConfig(mouth_fill="neural"), model=ModelConfig(backend=backend))
    compile_on_first_use(config)
    with ReenactmentEngine(config, image, face) as engine:
        assert engine.models == (f"mouth_net: {mouth_backend(backend)} on cpu",)
        engine.calibrate(driving["neutral"][1])
        open_face = driving["open"][1]
        target = engine.transformer.transform(open_face)
        lm = np.asarray(open_face.landmarks) if frame is not None else None
        result = engine.reenactor.render(target, frame, lm)
        inner = target.landmarks[engine.source.topology.lips_inner, :2]
    mask = np.zeros(result.image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    assert mask.sum() > 200
    return result.image, mask, result.mouth_alpha


def _chromaticity(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mean = rgb[mask].astype(np.float64).mean(0)
    return mean[:2] / mean.sum()


def test_black_and_white_portrait_keeps_a_grey_mouth(s42, track, driving):
    grey = greyscale(s42[0])
    out, mask, alpha = _net_mouth(grey, track(grey), driving, driving["open"][0])
    assert alpha > 0.5  # the net painted the opening
    lab = cv2.cvtColor(out.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[mask]
    assert np.linalg.norm(lab[:, 1:], axis=1).mean() <= 1.0


def test_warm_driver_does_not_tint_the_mouth(s42, driving):
    frame = driving["open"][0]
    clean, mask, _ = _net_mouth(*s42, driving, frame)
    warmed, _, _ = _net_mouth(*s42, driving, warm(frame))
    tint = np.abs(_chromaticity(warmed, mask) - _chromaticity(clean, mask)).max()
    # The same camera change moves the driver's own mouth's tint by over 0.05 (test_mouth_colour).
    assert tint < 0.005


def test_an_expression_edit_gets_an_interior_without_a_driver(s42, driving):
    out, mask, alpha = _net_mouth(*s42, driving, None)
    assert alpha > 0.5
    # Darker than the lips and skin around it: a mouth's inside, not a smear of lip.
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask
    assert out[mask].mean() < 0.8 * out[ring].mean()


def test_onnxruntime_paints_what_torch_paints_built_on_first_use(s42, driving, monkeypatch, tmp_path):
    """The shipped folder holds the net's safetensors only: ``auto`` (and ``onnxruntime``) export
    its ONNX into the user cache once, and the mouth it paints is torch's (the speed is the point:
    docs/MOUTH.md)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("FACEPAINT_CACHE", str(tmp_path))
    assert mouth_backend("auto") == mouth_backend("tensorrt") == "onnxruntime"
    frame = driving["open"][0]
    torch_out, mask, torch_alpha = _net_mouth(*s42, driving, frame, "torch")
    ort_out, _, ort_alpha = _net_mouth(*s42, driving, frame, "auto")
    assert torch_alpha > 0.5 and abs(ort_alpha - torch_alpha) < 1e-3
    assert np.abs(ort_out.astype(int) - torch_out.astype(int))[mask].max() <= 2
    assert [p.name.split("-")[0] for p in (tmp_path / "facepaint-live" / "models").iterdir()] == ["mouth_net"]


def _filled(image, face, driving, name: str, fill: str):
    """(output crop, the paint's opening strength) of ``image`` driven by ``driving[name]`` with
    ``mouth_fill = fill``."""
    config = EngineConfig(reenactor=ReenactorConfig(mouth_fill=fill))
    with ReenactmentEngine(config, image, face) as engine:
        engine.calibrate(driving["neutral"][1])
        frame, drv = driving[name]
        target = engine.transformer.transform(drv)
        result = engine.reenactor.render(target, frame, np.asarray(drv.landmarks))
        opened, _ = mouth_alpha(engine.source, target.landmarks)
    return result.image, opened


@pytest.mark.parametrize(("name", "like", "opened"), [("open", "paint", 0.99), ("neutral", "neural", 0.0)])
def test_hybrid_paints_beyond_the_portraits_opening_and_nets_inside_it(obama, driving, name, like, opened):
    """Obama smiles with his teeth showing. Driven wide open, the target opens far beyond that: the
    hybrid is the paint (the net would keep the teeth the warp stretched); at the driver's neutral
    the target stays inside his own opening: the hybrid is the net (which repaints the teeth rows
    the paint leaves to the warp). The two fills differ there, so either way is a real choice."""
    hybrid, strength = _filled(*obama, driving, name, "hybrid")
    assert (strength >= opened) if like == "paint" else (strength == opened)
    same = _filled(*obama, driving, name, like)[0]
    other = _filled(*obama, driving, name, "neural" if like == "paint" else "paint")[0]
    assert np.array_equal(hybrid, same)
    assert np.abs(other.astype(int) - same.astype(int)).max() > 40


def test_mouth_fill_is_checked():
    assert [f for f in ("paint", "neural", "hybrid", "off") if ReenactorConfig(mouth_fill=f).mouth_net] == [
        "neural", "hybrid"]
    with pytest.raises(ValueError, match="mouth_fill"):
        ReenactorConfig(mouth_fill="net")


def test_auto_runs_torch_until_a_render_builds_the_onnx(s42, monkeypatch, tmp_path):
    """The default ``--backend auto`` gives the mouth net onnxruntime once its ONNX is built (a render
    builds it first); an engine made before that runs torch and says why, never an error."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("FACEPAINT_CACHE", str(tmp_path))
    config = EngineConfig(reenactor=ReenactorConfig(mouth_fill="neural"))
    assert config.model.backend == "auto"
    with ReenactmentEngine(config, *s42) as engine:
        assert engine.models == ("mouth_net: torch on cpu (auto; onnxruntime: not built yet (a render builds it))",)
    assert compile_on_first_use(config)
    with ReenactmentEngine(config, *s42) as engine:
        assert engine.models == ("mouth_net: onnxruntime on cpu",)
    chosen = open_mouth_model(config.model)
    try:  # one thread: the 64 px net's layers are too small to share out (model_files says why)
        assert chosen.backend.session.get_session_options().intra_op_num_threads == 1
    finally:
        chosen.backend.close()


def test_the_drivers_layout_ignores_white_balance_and_reads_grey_as_luma(driving):
    """The layout the net reads (``mouth_net.driver_layout``): a gain per channel (a camera's white
    balance) leaves it as it was, and a greyscale camera gets the plain luma over the lips' luma."""
    from facepaint.engine.neural import mouth_net as mn
    from facepaint.engine.topology import get_topology

    frame, face = driving["open"]
    lm, topo = np.asarray(face.landmarks), get_topology(face.topology)
    m = mn.square_affine(lm, topo, 64)
    inner = mn.apply_affine(m, lm[topo.lips_inner])
    clean = mn.driver_layout(frame, lm, inner, topo, 64)
    # A warm camera's balance (R x1.25, B x0.7) scaled down so that nothing clips: then exactly a gain
    # per channel. The luma-over-lips layout the net was trained on moves 0.023 here; this one 0.005
    # (the uint8 rounding of the dark cavity).
    tinted = np.clip(frame * np.array([0.8, 0.64, 0.45]) + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(mn.driver_layout(tinted, lm, inner, topo, 64) - clean).max() < 0.012
    assert clean.max() - clean.min() > 0.5  # a layout with teeth and cavity in it, not a flat one
    grey = greyscale(frame)
    square = mn.cut(grey, m, 64).astype(np.float32)[..., 0]
    ring = mn.lips_ring(mn.apply_affine(m, lm[topo.lips_outer]), inner, 64)
    luma = cv2.GaussianBlur(square / np.median(square[ring]), (0, 0), mn.LAYOUT_BLUR * 64)
    assert np.abs(mn.driver_layout(grey, lm, inner, topo, 64) - luma).max() < 0.02
