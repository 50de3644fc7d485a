"""The shipped neural landmark transformer on real faces: the mouth follows the driver, the face
shape stays the source's; the shipped weights are the committed ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facepaint.engine.background_mixer import MixerConfig
from facepaint.engine.errors import ModelError
from facepaint.engine.files import sha256_file
from facepaint.engine.geometry import mouth_openness
from facepaint.engine.landmark_transformer import GeometricLandmarkTransformer, TransformerConfig
from facepaint.engine.neural import model_files
from facepaint.engine.neural.landmark_transformer import IBUG, NeuralLandmarkTransformer, to_canonical
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.source_face import SourceConfig, prepare_source
from facepaint.engine.stages import ModelConfig

# lp_d10.mp4 frames: 0 neutral, 100 the widest mouth, 223 a full blink (tests/engine/conftest.py).
FRAMES = {"neutral": 0, "open": 100, "blink": 223}
# Face-shape points of the 68: upper jaw, nose, eye corners (no chin, mouth, lids or brows: an
# expression moves those).
SHAPE = IBUG[[0, 1, 2, 3, 13, 14, 15, 16] + list(range(27, 36)) + [36, 39, 42, 45]]


@pytest.fixture(scope="module")
def faces(media):
    """{"image", "source", "neutral", "open", "blink"}: the lp_s42 portrait and its face, and
    lp_d10 frames' faces, tracked by the MediaPipe plugin (whose AUs the net reads)."""
    pytest.importorskip("mediapipe")
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    image = cv2.cvtColor(cv2.imread(str(media / "portraits" / "lp_s42.jpg")), cv2.COLOR_BGR2RGB)
    out = {"image": image}
    cap = cv2.VideoCapture(str(media / "driving" / "lp_d10.mp4"))
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        out["source"] = tracker.track(image)[0]
        for i in range(max(FRAMES.values()) + 1):
            ok, frame = cap.read()
            assert ok
            for name, index in FRAMES.items():
                if index == i:
                    out[name] = tracker.track(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))[0]
    cap.release()
    return out


@pytest.fixture(scope="module")
def source(faces):
    return prepare_source(faces["image"], faces["source"], SourceConfig())


def test_shipped_weights_match_their_sha256_and_stay_small():
    total = 0
    for stem, digest in model_files.SHIPPED_SHA256.items():
        path = model_files.shipped_dir() / f"{stem}.safetensors"
        assert sha256_file(path) == digest
        total += path.stat().st_size
    assert total < 25_000_000  # the budget for all shipped weights


def test_shipped_weights_with_another_hash_are_refused(monkeypatch):
    # The JSON beside the file still names the file's true hash: only the package's table differs.
    monkeypatch.setitem(model_files.SHIPPED_SHA256, model_files.TRANSFORMER, "0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        model_files.load_torch(model_files.TRANSFORMER)


def test_neutral_maps_to_source_and_open_mouth_opens(faces, source):
    tr = NeuralLandmarkTransformer(source, TransformerConfig(kind="neural"), ModelConfig())
    tr.calibrate(faces["neutral"])
    rest = tr.transform(faces["neutral"])
    np.testing.assert_allclose(rest.landmarks, source.landmarks, atol=1e-6)
    opened = tr.transform(faces["open"])
    assert mouth_openness(opened.landmarks, source.topology) > source.mouth_open + 0.3
    blink = tr.transform(faces["blink"]).eye_closure
    assert np.all(blink > 0.5)
    # Lids follow the driver's own lid opening, as in the geometric stage.
    geometric = GeometricLandmarkTransformer(source, TransformerConfig())
    geometric.calibrate(faces["neutral"])
    np.testing.assert_allclose(blink, geometric.transform(faces["blink"]).eye_closure, atol=1e-9)


def test_absolute_mode_keeps_the_source_face_shape(faces, source):
    """With no neutral frame (reference "source") the geometric transformer places the driver's
    landmarks over the source; the net only reads AUs, so the source's shape stays."""
    template = model_files.read_tensors(model_files.TRANSFORMER, None, ("template",))["template"].astype(float)

    def shape(lm):
        return to_canonical(lm, template)[SHAPE]

    cfg = TransformerConfig(kind="neural", reference="source")
    neural = NeuralLandmarkTransformer(source, cfg, ModelConfig())
    geometric = GeometricLandmarkTransformer(source, TransformerConfig(reference="source"))
    src = shape(source.landmarks)
    dists = {}
    for frame in ("neutral", "open"):
        drv = shape(faces[frame].landmarks)
        for name, tr in (("neural", neural), ("geometric", geometric)):
            tr.calibrate(faces["neutral"])
            out = shape(tr.transform(faces[frame]).landmarks)
            dists[name, frame] = (np.abs(out - src).mean(), np.abs(out - drv).mean())
    for frame in ("neutral", "open"):
        # The geometric absolute mode takes the driver's shape; the net stays nearer the source.
        assert dists["geometric", frame][1] < 0.01 * dists["geometric", frame][0], dists
        assert dists["neural", frame][0] < 0.7 * dists["neural", frame][1], dists
        assert dists["neural", frame][0] < 0.5 * dists["geometric", frame][0], dists


def test_engine_renders_with_both_neural_stages(faces):
    cfg = EngineConfig(transformer=TransformerConfig(kind="neural"), mixer=MixerConfig(kind="neural"))
    with ReenactmentEngine(cfg, faces["image"], faces["source"]) as engine:
        engine.render(None, faces["neutral"], 0.0)
        out = engine.render(None, faces["open"], 1.0)
    assert out.shape == faces["image"].shape and out.dtype == np.uint8
    lips = source_lips_box(engine.source)
    assert np.abs(out[lips].astype(int) - faces["image"][lips].astype(int)).mean() > 5


def source_lips_box(source):
    """Full-image slices around the source's lips."""
    x0, y0 = source.origin
    lips = source.landmarks[source.topology.lips_outer, :2]
    (a, b), (c, d) = lips.min(0).astype(int), lips.max(0).astype(int)
    return slice(y0 + b - 10, y0 + d + 30), slice(x0 + a - 10, x0 + c + 10)
