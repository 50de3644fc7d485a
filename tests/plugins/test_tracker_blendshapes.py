"""Blendshapes → AUs, rotation → angles, and the tracker configuration (no media needed)."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError
from facepaint.engine.track import AU_NAMES, BLENDSHAPE_NAMES
from facepaint.plugins.trackers.blendshapes import AU_TABLE, angles_from_rotation, au_vector
from facepaint.plugins.trackers.config import TrackerConfig


def _blend(**values: float) -> np.ndarray:
    out = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for name, value in values.items():
        out[BLENDSHAPE_NAMES.index(name)] = value
    return out


def test_au_table_matches_au_names_and_blendshape_names() -> None:
    assert tuple(name for name, _ in AU_TABLE) == AU_NAMES[:17]
    for _, groups in AU_TABLE:
        for group in groups:
            assert set(group) <= set(BLENDSHAPE_NAMES)


def test_au_vector_table() -> None:
    rotation = np.array([10.0, -5.0, 2.0], np.float32)
    au = au_vector(_blend(jawOpen=1.0, eyeBlinkLeft=0.8, eyeBlinkRight=0.4, mouthPucker=0.6), rotation)
    assert au.shape == (20,) and au.dtype == np.float32
    named = dict(zip(AU_NAMES, au.tolist(), strict=True))
    assert named["AU26"] == pytest.approx(5.0) and named["AU25"] == pytest.approx(5.0)
    assert named["AU45"] == pytest.approx(3.0)  # mean of both eyes, times 5
    assert named["AU23"] == pytest.approx(3.0)  # the larger of press (0) and pucker
    assert named["AU12"] == 0.0
    np.testing.assert_allclose(au[17:], rotation)
    assert au_vector(np.full(52, 2.0), rotation)[:17].max() == pytest.approx(5.0)


def _gl_rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """A face rotation in camera space (x right, y up, z to the viewer) built from physical motions."""
    a, b, c = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def test_angle_signs_follow_facetrack_convention() -> None:
    # The nose (model +z) pointing to camera -x is a face turned to the image's left: yaw > 0.
    nose = _gl_rotation(yaw_deg=-20) @ [0, 0, 1]
    assert nose[0] < 0
    np.testing.assert_allclose(angles_from_rotation(_gl_rotation(yaw_deg=-20)), [20, 0, 0], atol=1e-4)
    # Nose pointing up (camera +y): looking up, pitch > 0.
    assert (_gl_rotation(pitch_deg=-10) @ [0, 0, 1])[1] > 0
    np.testing.assert_allclose(angles_from_rotation(_gl_rotation(pitch_deg=-10)), [0, 10, 0], atol=1e-4)
    # Head top (model +y) tilting to camera +x, i.e. clockwise in the image: roll > 0.
    assert (_gl_rotation(roll_deg=-15) @ [0, 1, 0])[0] > 0
    np.testing.assert_allclose(angles_from_rotation(_gl_rotation(roll_deg=-15)), [0, 0, 15], atol=1e-4)
    # A uniform scale in the matrix does not change the angles.
    np.testing.assert_allclose(angles_from_rotation(2.0 * _gl_rotation(-20, 5, 3)), [20, -5, -3], atol=1e-4)


def test_unknown_config_key_fails_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'tracker.min_cutoff'"):
        build_config(TrackerConfig, {"min_cutof": 2.0}, where="tracker.")
    with pytest.raises(ConfigError, match="d_cutoff"):
        build_config(TrackerConfig, {"d_cutoff": 0.0}, where="tracker.")
    assert build_config(TrackerConfig, {"beta": 1.0}).beta == 1.0
