"""The geometric mixer: the head moves over a still, person-removed background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine

# lp_d12.mp4: frame 0 faces the camera, frame 90 is turned about 16 degrees (MediaPipe yaw).
FRONT, TURNED = 0, 90


@pytest.fixture(scope="module")
def head_turn(media, track):
    """(frame, face) at FRONT and TURNED of lp_d12.mp4 (large head turns)."""
    cap = cv2.VideoCapture(str(media / "driving" / "lp_d12.mp4"))
    out = []
    for i in range(TURNED + 1):
        ok, frame = cap.read()
        if not ok:
            pytest.skip("lp_d12.mp4 is shorter than expected")
        if i in (FRONT, TURNED):
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out.append((rgb, track(rgb)))
    cap.release()
    return out


@pytest.fixture(scope="module")
def rendered(obama, head_turn):
    """(engine, rest output, turned output, turned crop as reenacted, before the mix)."""
    img, face = obama
    engine = ReenactmentEngine(EngineConfig(), img, face)
    (f0, d0), (f1, d1) = head_turn
    rest = engine.render(f0, d0, 0.0)
    turned = engine.render(f1, d1, 1.0)
    return engine, rest, turned, engine.reenactor.render(engine._shown, f1, d1.landmarks)


def _outside_person(engine, moved_mask: np.ndarray) -> np.ndarray:
    """Full-frame mask of the crop pixels that neither the source's person mask nor the moved
    one touches: the background the output must leave as it is."""
    src = engine.source
    clear = (src.head_mask < 1e-3) & (moved_mask < 1e-3)
    out = np.zeros(src.image.shape[:2], bool)
    x0, y0, x1, y1 = src.box
    left, top = src.pad[:2]
    out[y0:y1, x0:x1] = clear[top:top + y1 - y0, left:left + x1 - x0]
    return out


def test_rest_shows_the_source_without_inpainting_halo(obama, rendered):
    _, rest, _, _ = rendered
    assert np.abs(rest.astype(int) - obama[0].astype(int)).max() <= 2


def test_background_stays_still_when_the_head_turns(obama, rendered):
    engine, _, turned, reenacted = rendered
    far = _outside_person(engine, reenacted.mask)
    src = obama[0].astype(np.float32)
    still = np.abs(turned.astype(np.float32) - src)[far].mean()
    dragged = np.abs(engine.mixer.paste(reenacted.image).astype(np.float32) - src)[far].mean()
    head = np.abs(turned.astype(np.float32) - src)[~far].mean()
    assert far.sum() > 20000, far.sum()
    assert still < 0.1, still
    # The warp alone (what was pasted before the mix) drags these pixels with the head.
    assert dragged > 3.0, dragged
    assert head > 5.0, head


@pytest.fixture(scope="module")
def hole(s42):
    """(source, filled mask, backgrounds by method) of lp_s42's person removed at 160 px."""
    from facepaint.engine.source_face import INPAINT_METHODS, SourceConfig, prepare_source

    img, face = s42
    backs = {m: prepare_source(img, face, SourceConfig(inpaint=m, inpaint_size=160)).background
             for m in INPAINT_METHODS}
    source = prepare_source(img, face, SourceConfig())
    filled = np.any([np.abs(b.astype(int) - source.crop).max(-1) > 0 for b in backs.values()], 0)
    return source, filled, backs


def test_shiftmap_fills_the_person_with_texture_where_telea_smears(hole):
    source, filled, backs = hole
    assert filled.mean() > 0.2  # the head hull and its margin

    def detail(image: np.ndarray) -> float:  # Laplacian energy inside the hole
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[filled].mean())

    assert detail(backs["shiftmap"]) > 1.5 * detail(backs["telea"])
    # Whatever the method, only the person changes: past the head mask the crop is its own.
    clear = source.head_mask < 1e-6
    assert clear.mean() > 0.1
    for back in backs.values():
        assert np.array_equal(back[clear], source.crop[clear])


def test_an_exemplar_method_without_opencv_contrib_says_how_to_get_it(monkeypatch, s42):
    from facepaint.engine.errors import ConfigError
    from facepaint.engine.source_face import SourceConfig, prepare_source

    monkeypatch.delattr(cv2, "xphoto")
    with pytest.raises(ConfigError, match="opencv-contrib-python==4"):
        prepare_source(*s42, SourceConfig(inpaint="shiftmap", inpaint_size=64))
    with pytest.raises(ValueError, match="inpaint must be one of telea, shiftmap, fsr"):
        SourceConfig(inpaint="magic")
