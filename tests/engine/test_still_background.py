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
