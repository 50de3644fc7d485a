"""PacedFileSource: a video file played on its own clock, like a camera."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from facepaint.plugins.base import Frame
from facepaint.plugins.sources.paced import PacedFileSource


class FakeClip:
    """A non-live source of ``n`` small frames at ``fps``; counts how often it is opened/closed."""

    opened = 0
    closed = 0
    rewound = 0

    def __init__(self, n: int = 10, fps: float = 25.0) -> None:
        self.n, self.fps, self.size = n, fps, (8, 6)
        FakeClip.opened += 1

    def __iter__(self):
        for i in range(self.n):
            yield Frame(np.full((6, 8, 3), i, np.uint8), i, i / self.fps, 0.0)

    def rewind(self) -> None:
        FakeClip.rewound += 1

    def close(self) -> None:
        FakeClip.closed += 1


@pytest.fixture(autouse=True)
def _reset_counts():
    FakeClip.opened = FakeClip.closed = FakeClip.rewound = 0


def test_frames_released_on_the_clip_clock():
    src = PacedFileSource("clip", opener=lambda p: FakeClip(10, 50.0))
    assert src.fps == 50.0 and src.size == (8, 6) and src.live and src.frame_count is None
    start = time.perf_counter()
    frames = list(src)
    elapsed = time.perf_counter() - start
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(10))
    assert 0.17 <= elapsed < 0.4  # 9 periods of 20 ms
    stamps = np.diff([f.captured_at for f in frames])
    assert np.allclose(stamps, 0.02, atol=1e-6)  # stamped when due, not when read
    assert [f.pts for f in frames] == pytest.approx([i * 0.02 for i in range(10)], abs=1e-6)
    assert src.dropped == 0 and src.delivered == 10 and FakeClip.closed == 1


def test_slow_reader_loses_frames_instead_of_slowing_the_clip():
    src = PacedFileSource("clip", opener=lambda p: FakeClip(20, 50.0))
    start = time.perf_counter()
    got = []
    for f in src:
        got.append(int(f.image[0, 0, 0]))
        time.sleep(0.05)  # 2.5 frame periods per frame
    elapsed = time.perf_counter() - start
    assert elapsed < 0.55  # the clip (0.4 s) plus the last frame's handling, not 20 x 50 ms
    assert src.dropped >= 10 and src.dropped + len(got) == 20
    assert got == sorted(got) and got[-1] >= 17  # the newest frames win


def test_loop_repeats_with_monotonic_pts_and_close_stops_a_wait():
    src = PacedFileSource("clip", loop=True, opener=lambda p: FakeClip(3, 100.0))
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 8:
            break
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert FakeClip.opened == 1 and FakeClip.rewound == 2  # one open file, rewound at each end
    slow = PacedFileSource("clip", opener=lambda p: FakeClip(3, 1.0))  # 1 s between frames
    it = iter(slow)
    next(it)
    threading.Timer(0.1, slow.close).start()
    start = time.perf_counter()
    assert list(it) == []
    assert time.perf_counter() - start < 0.5
    slow.close()


def test_real_clip_through_video_source(media):
    src = PacedFileSource(str(media / "driving" / "vr_2.mp4"))
    assert src.fps == pytest.approx(25.0) and src.size == (844, 844)
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 6:
            break
    src.close()
    assert frames[0].image.shape == (844, 844, 3)
    assert np.median(np.diff([f.captured_at for f in frames])) == pytest.approx(0.04, abs=1e-6)
