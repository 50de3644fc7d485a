"""ReenactmentEngine end to end on real faces (measured on the output with the tracker)."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError, InputError, NoFaceError
from facepaint.engine.geometry import soft_polygon
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.topology import IBUG68_FROM_MESH
from facepaint.engine.track import FaceTrack


def _blink(face: FaceTrack) -> float:
    return 0.5 * (face.blendshape("eyeBlinkLeft") + face.blendshape("eyeBlinkRight"))


@pytest.fixture(scope="module")
def engine(s42, driving):
    img, face = s42
    eng = ReenactmentEngine(EngineConfig(), img, face)
    eng.render(*driving["neutral"], 0.0)
    return eng


def test_output_is_source_size_and_rest_at_neutral(engine, obama, driving, s42):
    out = engine.render(*driving["neutral"], 0.0)
    assert out.shape == s42[0].shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - s42[0]).mean() < 1.0
    big = ReenactmentEngine(EngineConfig(), *obama)
    assert big.render(*driving["open"], 0.0).shape == obama[0].shape


def test_open_mouth_opens_output_mouth(engine, driving, track, s42):
    out = engine.render(*driving["open"], 0.1)
    tracked = track(out)
    assert tracked is not None
    assert tracked.blendshape("jawOpen") > track(s42[0]).blendshape("jawOpen") + 0.3
    src = engine.source
    inner = src.landmarks[src.topology.lips_outer, :2] + src.origin
    mouth = soft_polygon(out.shape[:2], inner, 0) > 0.5
    changed = np.abs(out.astype(int) - s42[0]).sum(2)[mouth]
    assert np.median(changed) > 30


def test_blink_closes_output_eyes(engine, driving, track, s42):
    out = engine.render(*driving["blink"], 0.2)
    tracked = track(out)
    assert tracked is not None
    assert _blink(tracked) > 0.4 > _blink(track(s42[0]))


def test_identity_kept(engine, driving, s42, dlib_descriptor):
    descriptor = dlib_descriptor
    ref = descriptor(s42[0])
    # The clip's widest mouth is the hardest frame (~0.45 alone); the target is the typical frame.
    dist = [np.linalg.norm(descriptor(engine.render(*driving[k], 0.3)) - ref) for k in ("open", "blink")]
    assert max(dist) < 0.55 and np.mean(dist) < 0.45


def test_far_pixels_unchanged(obama, driving):
    img, face = obama
    eng = ReenactmentEngine(EngineConfig(), img, face)
    eng.render(*driving["neutral"], 0.0)
    out = eng.render(*driving["open"], 0.1)
    x0, y0, x1, y1 = eng.source.box
    outside = np.ones(img.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert outside.any() and np.array_equal(out[outside], img[outside])
    assert np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1]).max() > 50


def test_face_lost_holds_then_returns_to_rest(s42, driving):
    img, face = s42
    eng = ReenactmentEngine(EngineConfig(hold_s=0.5, ease_s=0.5, return_s=0.2), img, face)
    assert np.array_equal(eng.render(None, None, 0.0), img)
    eng.render(*driving["neutral"], 0.0)
    live = eng.render(*driving["open"], 1.0)
    held = eng.render(None, None, 1.3)  # lost from here: held until 1.8, at rest from 2.3
    assert np.abs(held.astype(int) - live).mean() < 1.0
    assert np.abs(eng.render(None, None, 1.75).astype(int) - live).mean() < 1.0
    easing = eng.render(None, None, 2.05)
    d_rest = np.abs(easing.astype(int) - img).mean()
    assert 0 < d_rest < 0.8 * np.abs(live.astype(int) - img).mean()
    assert np.array_equal(eng.render(None, None, 2.35), img)
    back = eng.render(*driving["open"], 2.4)  # blends in over return_s, no jump
    assert np.abs(back.astype(int) - img).mean() < 0.5 * np.abs(live.astype(int) - img).mean()
    assert np.abs(eng.render(*driving["open"], 2.7).astype(int) - live).mean() < 1.0


def test_recalibrate_makes_next_face_neutral(s42, driving):
    img, face = s42
    eng = ReenactmentEngine(EngineConfig(), img, face)
    eng.render(*driving["neutral"], 0.0)
    eng.recalibrate()
    out = eng.render(*driving["open"], 0.1)
    assert np.abs(out.astype(int) - img).mean() < 1.0
    np.testing.assert_array_equal(eng.rest(), img)


def test_ibug68_topology_accepted(s42, driving):
    idx = np.asarray(IBUG68_FROM_MESH)

    def to68(face: FaceTrack) -> FaceTrack:
        return FaceTrack(face.landmarks[idx], face.blendshapes, face.rotation, face.translation,
                         face.au, "ibug68", face.frame_size)

    img, face = s42
    eng = ReenactmentEngine(EngineConfig(), img, to68(face))
    eng.render(driving["neutral"][0], to68(driving["neutral"][1]), 0.0)
    out = eng.render(driving["open"][0], to68(driving["open"][1]), 0.1)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - img).mean() > 1.0
    with pytest.raises(InputError):
        eng.render(*driving["open"], 0.2)


def test_config_strict():
    with pytest.raises(ConfigError, match="did you mean"):
        build_config(EngineConfig, {"hold_sec": 1.0})
    with pytest.raises(ConfigError, match="did you mean"):
        build_config(EngineConfig, {"transformer": {"expresion": 1.0}})
    with pytest.raises(ConfigError):
        build_config(EngineConfig, {"ease_s": -1})
    cfg = build_config(EngineConfig, {"reenactor": {"mouth_fill": "off"}, "hold_s": 1.0})
    assert cfg.hold_s == 1.0 and cfg.reenactor.mouth_fill == "off"


def test_bad_source_rejected(s42):
    img, face = s42
    with pytest.raises(NoFaceError):
        ReenactmentEngine(EngineConfig(), img, None)
    with pytest.raises(InputError):
        ReenactmentEngine(EngineConfig(), img.astype(np.float32), face)


def _iris_offset(face: FaceTrack) -> float:
    """Mean iris x relative to the eye-corner midpoint, in eye widths (mesh indices)."""
    lm = face.landmarks
    out = []
    for iris, (a, b) in ((468, (33, 133)), (473, (263, 362))):
        mid = 0.5 * (lm[a, 0] + lm[b, 0])
        out.append((lm[iris, 0] - mid) / abs(lm[a, 0] - lm[b, 0]))
    return float(np.mean(out))


def test_irises_follow_gaze(s42, gaze, track):
    img, face = s42
    eng = ReenactmentEngine(EngineConfig(), img, face)
    eng.render(*gaze[0], 0.0)
    for frame, drv in gaze[1:]:
        out = track(eng.render(frame, drv, 0.5))
        shift_out = _iris_offset(out) - _iris_offset(face)
        shift_drv = _iris_offset(drv) - _iris_offset(gaze[0][1])
        assert np.sign(shift_out) == np.sign(shift_drv) and abs(shift_out) > 0.3 * abs(shift_drv)


def test_complete_when_built(s42, driving):
    """Neutral, background and reference mode are the constructor's: nothing is set up after it."""
    from facepaint.engine.person_matte import BackgroundReplacer

    img, face = s42
    neutral, frame = driving["blink"][1], driving["open"]
    built = ReenactmentEngine(EngineConfig(), img, face, neutral=neutral)
    reset = ReenactmentEngine(EngineConfig(), img, face)
    reset.reset(neutral)
    out = built.render(*frame, 0.0)
    np.testing.assert_array_equal(out, reset.render(*frame, 0.0))
    own = ReenactmentEngine(EngineConfig(), img, face).render(*frame, 0.0)  # neutral: the open mouth itself
    assert np.abs(out.astype(int) - own).mean() > np.abs(own.astype(int) - img).mean()

    replacer = BackgroundReplacer(img, face, np.full_like(img, (0, 255, 0)))
    green = ReenactmentEngine(EngineConfig(), img, face, neutral=neutral, background=replacer)
    np.testing.assert_array_equal(green.render(*frame, 0.0), replacer.apply(out))
    np.testing.assert_array_equal(green.still(), replacer.apply(img))

    assert ReenactmentEngine(EngineConfig(), img, face, live=True).following_neutral
    assert not ReenactmentEngine(EngineConfig(), img, face).following_neutral
    assert ReenactmentEngine(EngineConfig(), img, face, still=True).config.transformer.reference == "source"
