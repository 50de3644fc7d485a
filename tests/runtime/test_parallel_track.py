"""Offline tracking over several trackers: ordered, lossless, each tracker's timestamps increasing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.errors import ConfigError, InputError
from facepaint.plugins.base import Frame
from facepaint.runtime.parallel_track import ParallelTracking
from facepaint.runtime.session import Tracked
from fakes import FakeTracker


def _frames(n: int, dark: tuple[int, ...] = ()) -> list[Frame]:
    return [Frame(image=np.full((48, 64, 3), 0 if i in dark else 200, np.uint8), index=i, pts=i / 30.0,
                  captured_at=0.0) for i in range(n)]


class SlowTracker(FakeTracker):
    """A fake tracker that takes a while on some frames, so results finish out of order."""

    def __init__(self, delays: dict[int, float], fail_at: int | None = None) -> None:
        super().__init__()
        self.delays, self.fail_at = delays, fail_at

    def track(self, image, timestamp_ms=None):
        index = round((timestamp_ms or 0) * 30 / 1000)
        time.sleep(self.delays.get(index, 0.0))
        if index == self.fail_at:
            raise InputError(f"tracker refused frame {index}")
        return super().track(image, timestamp_ms)


def _run(tracking: ParallelTracking, frames: list[Frame]) -> list[Tracked]:
    out = []
    for frame in frames:
        out += tracking.push(frame)
    return out + tracking.flush()


def test_results_come_back_in_order_and_each_tracker_sees_its_share_in_order() -> None:
    trackers = [SlowTracker({0: 0.05, 4: 0.03}), SlowTracker({1: 0.02}), SlowTracker({})]
    tracking = ParallelTracking(trackers, Tracked)
    out = _run(tracking, _frames(20, dark=(5, 6)))
    tracking.close()
    assert [t.frame.index for t in out] == list(range(20))
    assert [t.face is None for t in out] == [i in (5, 6) for i in range(20)]
    assert tracking.frames_without_face == 2
    for k, tracker in enumerate(trackers):
        assert tracker.timestamps == [round(i * 1000 / 30) for i in range(k, 20, 3)]


def test_a_tracker_error_surfaces_in_frame_order() -> None:
    tracking = ParallelTracking([SlowTracker({}), SlowTracker({}, fail_at=7)], Tracked)  # frame 7: tracker 1
    with pytest.raises(InputError, match="frame 7"):
        _run(tracking, _frames(12))
    tracking.close()


def test_tracker_count_is_checked() -> None:
    with pytest.raises(ConfigError, match="track_workers"):
        ParallelTracking([], Tracked)


@pytest.mark.slow
def test_real_clip_with_two_trackers_renders_every_frame_like_one(portrait: Path, talking_clip: Path,
                                                                  tmp_path: Path) -> None:
    import cv2

    from facepaint.runtime.cli import main

    videos = {}
    for n in (1, 2):
        out, stats = tmp_path / f"out{n}.mp4", tmp_path / f"s{n}.json"
        assert main(["--source", str(portrait), "--driving", str(talking_clip), "--output", str(out), "--quiet",
                     "--duration", "4", "--track-workers", str(n), "--stats-json", str(stats)]) == 0
        report = json.loads(stats.read_text())
        assert report["frames_written"] == 120 and report["frames_without_face"] == 0
        cap, frames = cv2.VideoCapture(str(out)), []
        while (ok_frame := cap.read())[0]:
            frames.append(ok_frame[1].astype(np.int16))
        cap.release()
        videos[n] = np.stack(frames)
    # Each tracker sees every other frame, so the landmarks (and the output) differ a little.
    assert videos[1].shape == videos[2].shape
    assert np.abs(videos[1] - videos[2]).mean() < 2.0
