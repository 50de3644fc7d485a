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


def _mouth_shift(source, driving_faces):
    """Target expression motion from the neutral to the ``open`` face, smile damping off and on
    (head pose not followed, so the motion is the expression alone)."""
    out = []
    for headroom in (0.0, 1.0):
        cfg = TransformerConfig(smile_headroom=headroom, rotation=0.0, translation=0.0, scale=False)
        tr = GeometricLandmarkTransformer(source, cfg)
        tr.calibrate(driving_faces["neutral"][1])
        lm = tr.transform(driving_faces["open"][1]).landmarks
        out.append(lm - tr.transform(driving_faces["neutral"][1]).landmarks)
    return out


def test_smiling_source_damps_sideways_and_upward_mouth_motion(obama, s42, driving):
    smiling = prepare_source(*obama, SourceConfig())
    assert smiling.smile > 0.5
    free, damped = _mouth_shift(smiling, driving)
    corners = smiling.topology.mouth_corners
    assert np.all(np.abs(damped[corners, 0]) < np.abs(free[corners, 0]) + 1e-9)
    # The jaw opening (downward) is untouched: the lower lip drops as far as without damping.
    chin = smiling.topology.lip_pairs[:, 1]
    down = free[chin, 1] > 0
    np.testing.assert_allclose(damped[chin[down], 1], free[chin[down], 1])
    # A source that does not smile is not damped at all.
    plain = prepare_source(*s42, SourceConfig())
    assert plain.smile < 0.1
    free, damped = _mouth_shift(plain, driving)
    np.testing.assert_allclose(damped, free, atol=0.5 * plain.smile * plain.face_width + 1e-6)


def test_set_config_changes_gains_and_regions_from_the_next_transform(s42, driving):
    """The live sliders' path: a new config on a calibrated transformer equals one built with it."""
    img, face = s42
    source = prepare_source(img, face, SourceConfig())
    live = GeometricLandmarkTransformer(source, TransformerConfig())
    live.calibrate(driving["neutral"][1])
    wanted = TransformerConfig(expression=0.4, regions=("eyes", "pose"))
    built = GeometricLandmarkTransformer(source, wanted)
    built.calibrate(driving["neutral"][1])
    before = live.transform(driving["open"][1]).landmarks
    live.set_config(wanted)
    after = live.transform(driving["open"][1]).landmarks
    np.testing.assert_allclose(after, built.transform(driving["open"][1]).landmarks, atol=1e-9)
    assert mouth_openness(after, source.topology) < mouth_openness(before, source.topology) - 0.2  # mouth off
    with pytest.raises(ValueError, match="cannot change the transformer kind"):
        live.set_config(TransformerConfig(kind="neural"))
