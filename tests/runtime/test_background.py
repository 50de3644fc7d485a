"""--background: the person matte from the tracked face, and the composite over it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facepaint.engine.topology import get_topology
from facepaint.plugins.base import load_plugin
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.runtime.background import open_background
from facepaint.runtime.cli import main


@pytest.fixture(scope="module")
def obama(media):
    image = cv2.cvtColor(cv2.imread(str(media / "portraits" / "obama.jpg")), cv2.COLOR_BGR2RGB)
    with load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False)) as tracker:
        face = tracker.track(image, None)[0]
    return image, face


def test_matte_keeps_face_hair_and_shoulders_and_drops_the_room(obama) -> None:
    image, face = obama
    replacer = open_background("#00ff00", image, face)
    matte = replacer.matte[..., 0]
    oval = np.round(face.landmarks[get_topology("mediapipe478").oval, :2]).astype(np.int32)
    inside = np.zeros(matte.shape, np.uint8)
    cv2.fillPoly(inside, [oval], 1)
    assert matte[inside > 0].min() == 1.0  # the whole face
    top = int(oval[:, 1].min())
    cx = int(oval[:, 0].mean())
    assert matte[top - 10, cx] > 0.5  # the hair just above the forehead
    h, w = matte.shape
    assert matte[int(0.85 * h), w // 2] > 0.9  # the suit below the chin
    assert matte[: h // 10, : w // 10].max() < 0.05 and matte[: h // 10, -w // 10:].max() < 0.05  # flags, curtains


def test_composite_leaves_person_pixels_unchanged(obama) -> None:
    image, face = obama
    for spec in ("#00ff00", "blur"):
        replacer = open_background(spec, image, face)
        frame = np.roll(image, 3, axis=1)  # any frame of the source's size
        out = replacer.apply(frame)
        person = replacer.matte[..., 0] == 1.0
        assert person.mean() > 0.2 and np.array_equal(out[person], frame[person])
    green = open_background("green", image, face).apply(image)
    assert (green[5, 5] == (0, 255, 0)).all()


def test_cli_background_on_a_still(media, tmp_path, capsys) -> None:
    src = str(media / "portraits" / "lp_s42.jpg")
    out = tmp_path / "keyed.png"
    assert main(["--source", src, "--background", "#0000ff", "--output", str(out)]) == 0
    assert "background #0000ff" in capsys.readouterr().err
    keyed = cv2.imread(str(out))
    assert (keyed[3, 3] == (255, 0, 0)).all()  # BGR blue in the corner
    plain = cv2.imread(src)
    assert np.abs(keyed[250, 256].astype(int) - plain[250, 256]).max() <= 1  # the nose, untouched
    for bad, words in (("mauve-ish", ["is not an image file, a colour", "blur"]),
                       (str(tmp_path / "none.jpg"), ["not found"])):
        assert main(["--source", src, "--background", bad, "--output", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[-1] for w in words), err
    assert not (tmp_path / "x.png").exists()
