"""The painted mouth interior takes the portrait's colours, not the camera's (issue 20)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from facepaint.engine.face_reenactor import ReenactorConfig
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.topology import get_topology
from facepaint.runtime.evaluation.mouth import greyscale, warm


def _painted_mouth(image, face, driving, frame, colour: str):
    """(output crop, bool mask of the target inner mouth) of ``image`` driven open by ``frame``."""
    config = EngineConfig(reenactor=ReenactorConfig(mouth_colour=colour))
    with ReenactmentEngine(config, image, face) as engine:
        engine.calibrate(driving["neutral"][1])
        open_face = driving["open"][1]
        target = engine.transformer.transform(open_face)
        result = engine.reenactor.render(target, frame, np.asarray(open_face.landmarks))
        assert result.mouth_alpha > 0.5  # the interior is painted, not the source's own warped
        inner = target.landmarks[engine.source.topology.lips_inner, :2]
    mask = np.zeros(result.image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    assert mask.sum() > 200
    return result.image, mask


def _lab(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[mask]


@pytest.fixture(scope="module")
def grey_s42(s42, track):
    """lp_s42 made black and white, tracked as a portrait."""
    grey = greyscale(s42[0])
    return grey, track(grey)


def test_black_and_white_portrait_keeps_a_grey_mouth(grey_s42, driving):
    frame = driving["open"][0]
    out, mask = _painted_mouth(*grey_s42, driving, frame, "portrait")
    chroma = np.linalg.norm(_lab(out, mask)[:, 1:], axis=1).mean()
    assert chroma <= 1.0
    # The colour match over the lower face lets the driver's colours through (cyan-white teeth).
    out, mask = _painted_mouth(*grey_s42, driving, frame, "driver")
    assert np.linalg.norm(_lab(out, mask)[:, 1:], axis=1).mean() > 2.0


def _chromaticity(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(r, g) share of the mean colour: the tint, whatever the exposure."""
    mean = rgb[mask].astype(np.float64).mean(0)
    return mean[:2] / mean.sum()


def test_warm_driver_does_not_tint_the_mouth(s42, driving):
    frame = driving["open"][0]
    clean, mask = _painted_mouth(*s42, driving, frame, "portrait")
    warmed, _ = _painted_mouth(*s42, driving, warm(frame), "portrait")
    tint = np.abs(_chromaticity(warmed, mask) - _chromaticity(clean, mask)).max()
    lm = np.asarray(driving["open"][1].landmarks)
    own = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(own, [np.round(lm[get_topology("mediapipe478").lips_inner, :2]).astype(np.int32)], 1)
    own = own.astype(bool)
    driver_tint = np.abs(_chromaticity(warm(frame), own) - _chromaticity(frame, own)).max()
    assert driver_tint > 0.05  # the warm camera moves the driver's own mouth's tint a lot
    assert tint < 0.1 * driver_tint


def test_mouth_colour_is_checked():
    with pytest.raises(ValueError, match="mouth_colour"):
        ReenactorConfig(mouth_colour="camera")
    assert dataclasses.replace(ReenactorConfig(), mouth_colour="driver").mouth_colour == "driver"
