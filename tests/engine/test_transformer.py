"""The landmark transformer on real faces: identity at the neutral, mouth and lids follow."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.geometry import eye_openness, mouth_openness
from facepaint.engine.landmark_transformer import GeometricLandmarkTransformer, TransformerConfig
from facepaint.engine.source_face import SourceConfig, prepare_source


@pytest.fixture(scope="module")
def transformer(s42, driving):
    img, face = s42
    tr = GeometricLandmarkTransformer(prepare_source(img, face, SourceConfig()), TransformerConfig())
    tr.calibrate(driving["neutral"][1])
    return tr


def test_neutral_driving_maps_to_source_exactly(transformer, driving):
    target = transformer.transform(driving["neutral"][1])
    np.testing.assert_allclose(target.landmarks, transformer.source.landmarks, atol=1e-6)
    np.testing.assert_allclose(target.anchors, transformer.source.anchors, atol=1e-6)
    assert np.all(target.eye_closure == 0)


def test_open_mouth_opens_target_lips(transformer, driving):
    source = transformer.source
    target = transformer.transform(driving["open"][1])
    assert mouth_openness(target.landmarks, source.topology) > source.mouth_open + 0.3


def test_blink_closes_target_lids(transformer, driving):
    source = transformer.source
    target = transformer.transform(driving["blink"][1])
    assert np.all(target.eye_closure > 0.8)
    assert np.all(eye_openness(target.landmarks, source.topology) < 0.3 * source.eye_open)


def test_no_identity_leak_from_driving_shape(transformer, driving):
    """At the neutral the target is the source's shape, not the driving's, whatever their faces."""
    target = transformer.transform(driving["neutral"][1])
    drv = driving["neutral"][1].landmarks[:, :2]
    src = transformer.source.landmarks[:, :2]
    # Compare shapes after removing position and scale: target must equal the source's.
    def norm(p):
        p = p - p.mean(0)
        return p / np.linalg.norm(p)
    assert np.abs(norm(target.landmarks[:, :2]) - norm(src)).max() < 1e-6
    assert np.abs(norm(drv) - norm(src)).max() > 1e-3
