"""Inner-mouth layer: the source's teeth stay rigid with their own lip and are never shown twice."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.geometry import box_around
from facepaint.engine.mouth import _rigid_teeth
from facepaint.engine.source_face import SourceConfig, prepare_source


@pytest.fixture(scope="module")
def source(obama):
    """The Obama portrait (smiling, teeth shown) prepared as a source."""
    return prepare_source(*obama, SourceConfig())


def _column_rows(source, target):
    """The rigid-teeth ``inside`` share along the mouth's centre column, with the box's y0."""
    inner = target[source.topology.lips_inner, :2]
    h, w = source.crop.shape[:2]
    box = box_around(inner, 4.0, (w, h))
    _, inside = _rigid_teeth(source, target, box)
    pairs = source.topology.lip_pairs
    x = int(round(target[pairs[:, 0], 0].mean())) - box[0]
    return inside[:, x, 0], box[1]


def test_wider_opening_shows_a_gap_not_teeth_twice(source):
    topo, src = source.topology, source.landmarks
    up, lo = topo.lip_pairs[:, 0], topo.lip_pairs[:, 1]
    width = float(np.ptp(src[topo.lips_inner, 0]))
    drop = 0.5 * width
    target = src.copy()
    # The lower lip and everything below the source's mouth mid-line drop: a much wider opening.
    mid_src = 0.5 * (src[up, 1].mean() + src[lo, 1].mean())
    target[src[:, 1] > mid_src, 1] += drop
    col, y0 = _column_rows(source, target)
    centre = np.argmax(src[lo, 1] - src[up, 1])
    # A quarter of the source's gap above its lower lip, at the centre: the lower teeth.
    lower_teeth = src[lo[centre], 1] - 0.25 * (src[lo[centre], 1] - src[up[centre], 1])
    # Where the source's lower teeth were (now the gap between the jaws): no source teeth.
    assert col[int(round(lower_teeth)) - y0] < 0.1
    # The lower teeth themselves moved down with their lip and are still drawn there.
    assert col[int(round(lower_teeth + drop)) - y0] > 0.5


def test_rest_target_keeps_the_source_teeth(source):
    col, y0 = _column_rows(source, source.landmarks.copy())
    src, topo = source.landmarks, source.topology
    mid = 0.5 * (src[topo.lip_pairs[:, 0], 1].mean() + src[topo.lip_pairs[:, 1], 1].mean())
    assert col[int(round(mid)) - y0 - 2] > 0.5 and col[int(round(mid)) - y0 + 2] > 0.5
