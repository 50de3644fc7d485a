"""The neural reenactor (``--reenactor neural``) on real faces, with the shipped weights."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from facepaint.engine.config import build_config
from facepaint.engine.errors import ModelError
from facepaint.engine.face_reenactor import GeometricFaceReenactor
from facepaint.engine.files import sha256_file
from facepaint.engine.geometry import mouth_openness, soft_polygon
from facepaint.engine.neural.align import align_matrix, align_params, apply_affine
from facepaint.engine.neural.face_reenactor import NeuralFaceReenactor
from facepaint.engine.neural.generator import CoarseToFineGenerator, GeneratorConfig
from facepaint.engine.neural.inputs import IN_CHANNELS, REGIONS, CoarseWarp, heatmaps
from facepaint.engine.neural.model_files import GENERATOR, MODELS, SHIPPED_SHA256, load_torch, shipped_dir
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.topology import MESH_LEFT_EYE, MESH_RIGHT_EYE, get_topology


def _neural_config() -> EngineConfig:
    return build_config(EngineConfig, {"reenactor": {"kind": "neural"}})


@pytest.fixture(scope="module")
def neural(s42, driving):
    eng = ReenactmentEngine(_neural_config(), *s42)
    eng.render(*driving["neutral"], 0.0)
    yield eng
    eng.close()


def test_generator_shapes_and_starts_at_the_coarse_warp():
    gen = CoarseToFineGenerator(GeneratorConfig(size=64, width=8, blocks=1))
    x = torch.rand(2, IN_CHANNELS, 64, 64) * 2 - 1
    face, seg, residual = gen(x)
    assert face.shape == (2, 3, 64, 64) and seg.shape == (2, 3, 64, 64) and residual.shape == (2, 3, 64, 64)
    # The residual head starts at zero: an untrained generator returns the warp it was given.
    assert torch.equal(face, x[:, 3:6])


def test_alignment_levels_the_eyes_and_inputs_fit(s42):
    _, face = s42
    m = align_matrix(align_params(face.landmarks), 128)
    lm = apply_affine(m, face.landmarks)
    right, left = lm[list(MESH_RIGHT_EYE), :2].mean(0), lm[list(MESH_LEFT_EYE), :2].mean(0)
    assert abs(right[1] - left[1]) < 2.0 and 30 < left[0] - right[0] < 60
    assert lm[:, :2].min() > 0 and lm[:, :2].max() < 128
    heat = heatmaps(lm, 128)
    assert heat.shape == (len(REGIONS), 128, 128) and heat.max() == pytest.approx(1.0) and heat.min() >= 0


def test_coarse_warp_to_own_landmarks_is_the_source(s42):
    import cv2

    img, face = s42
    m = align_matrix(align_params(face.landmarks), 128)
    square = cv2.warpAffine(img, m, (128, 128))
    lm = apply_affine(m, face.landmarks)
    assert np.abs(CoarseWarp(square, lm).render(lm).astype(int) - square).mean() < 1.0


def test_shipped_weights_match_their_sha256_and_a_damaged_copy_is_refused(tmp_path):
    for stem in MODELS:
        assert sha256_file(shipped_dir() / f"{stem}.safetensors") == SHIPPED_SHA256[stem]
    gen = load_torch(GENERATOR)
    assert isinstance(gen, CoarseToFineGenerator) and gen.config.size == 128
    copy = tmp_path / "w"
    shutil.copytree(shipped_dir(), copy)
    weights = copy / f"{GENERATOR}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_torch(GENERATOR, copy)


def test_neural_output_opens_its_mouth_with_the_driver(neural, driving, track, s42):
    rest = track(neural.render(*driving["neutral"], 0.05))
    out = neural.render(*driving["open"], 0.1)
    tracked = track(out)
    assert out.shape == s42[0].shape and tracked is not None
    assert tracked.blendshape("jawOpen") > rest.blendshape("jawOpen") + 0.3
    # The inner-lip gap (over mouth width) measured on the output opens with the driver's.
    topo = get_topology("mediapipe478")
    gap_out = mouth_openness(tracked.landmarks, topo) - mouth_openness(rest.landmarks, topo)
    gap_driver = (mouth_openness(driving["open"][1].landmarks, topo)
                  - mouth_openness(driving["neutral"][1].landmarks, topo))
    assert gap_out > 0.5 * gap_driver > 0.1


def test_neural_output_keeps_identity(neural, driving, s42, dlib_descriptor):
    descriptor = dlib_descriptor
    ref = descriptor(s42[0])
    dist = [np.linalg.norm(descriptor(neural.render(*driving[k], 0.3)) - ref) for k in ("open", "blink")]
    assert max(dist) < 0.55 and np.mean(dist) < 0.45


def test_neural_output_carries_the_geometric_mouth_fill_over_the_generator(neural, driving):
    """The shipped generator paints no mouth interior: the geometric fill goes over its output
    (mouth_fill on, the default), and without it the inner mouth is the generator's own."""
    frame, face = driving["open"]
    target = neural.transformer.transform(face)
    source, config = neural.source, neural.config.reenactor
    filled = neural.reenactor.render(target, frame, face.landmarks)
    bare = NeuralFaceReenactor(source, dataclasses.replace(config, mouth_fill="off", lid_fill=False, gaze=False))
    own = bare.render(target, frame, face.landmarks)
    bare.close()
    geometric = GeometricFaceReenactor(source, dataclasses.replace(config, kind="geometric"))
    painted = geometric.render(target, frame, face.landmarks)
    inner = target.landmarks[source.topology.lips_inner, :2]
    inside = soft_polygon(filled.image.shape[:2], inner, 0.0) > 0.99
    assert filled.mouth_alpha > 0.5 and inside.sum() > 100

    def gap(a: np.ndarray) -> float:
        return float(np.abs(a.astype(np.float32) - painted.image.astype(np.float32))[inside].mean())

    assert gap(filled.image) < 2.0
    assert gap(own.image) > 10.0
