"""WebcamSource with a fake cv2.VideoCapture, and the --cam parsing."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from facepaint.engine.errors import SourceError
from facepaint.plugins.sources.webcam import WebcamSource, is_video_file, parse_cam


class FakeCapture:
    """cv2.VideoCapture look-alike: ``script`` decides each read (True: a frame, False: failure)."""

    def __init__(self, opened: bool = True, script=None, fps: float = 0.0) -> None:
        self.opened, self.script, self.fps = opened, script, fps
        self.released = 0
        self.props: dict[int, float] = {}
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 6, cv2.CAP_PROP_FPS: self.fps}.get(prop, 0)

    def read(self):
        self.reads += 1
        ok = self.script(self.reads) if self.script else True
        if not ok:
            return False, None
        bgr = np.zeros((6, 8, 3), np.uint8)
        bgr[..., 0] = 255  # blue in BGR
        return True, bgr

    def release(self) -> None:
        self.released += 1


@pytest.mark.parametrize(("spec", "expected"), [("0", 0), (" 2 ", 2), ("/dev/video3", "/dev/video3")])
def test_parse_cam_index_and_device(spec, expected):
    assert parse_cam(spec) == expected
    assert not is_video_file(parse_cam(spec))


def test_parse_cam_existing_file_and_errors(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert parse_cam(str(clip)) == str(clip) and is_video_file(str(clip))
    with pytest.raises(SourceError, match="a video file of that name was not found"):
        parse_cam(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="not a camera index"):
        parse_cam("webcam")
    with pytest.raises(SourceError, match=">= 0"):
        parse_cam("-1")


def test_frames_are_rgb_stamped_and_released_once():
    cap = FakeCapture(fps=0.0)
    src = WebcamSource(0, capture_factory=lambda device: cap)
    assert src.size == (8, 6) and src.fps == 30.0 and src.live and src.frame_count is None
    assert cap.props[cv2.CAP_PROP_BUFFERSIZE] == 1
    before = time.perf_counter()
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 3:
            break
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].image[0, 0].tolist() == [0, 0, 255]  # BGR blue became RGB blue
    assert before <= frames[0].captured_at <= frames[2].captured_at <= time.perf_counter()
    src.close()
    src.close()
    assert cap.released == 1


def test_cannot_open_names_the_fix():
    cap = FakeCapture(opened=False)
    with pytest.raises(SourceError, match=r"cannot open camera 1; check it is plugged in") as info:
        WebcamSource(1, capture_factory=lambda device: cap)
    assert "\n" not in str(info.value) and cap.released == 1


def test_camera_that_comes_back_is_retried():
    caps = [FakeCapture(script=lambda n: n <= 2), FakeCapture(opened=False), FakeCapture()]
    src = WebcamSource("/dev/video0", retry_s=2.0, capture_factory=lambda device: caps.pop(0))
    got = []
    for f in src:
        got.append(f.index)
        if len(got) == 4:
            break
    src.close()
    assert got == [0, 1, 2, 3] and src.retries == 1


def test_camera_that_stays_gone_raises_after_retry_window():
    def factory(device):
        return FakeCapture(script=lambda n: False) if factory.calls == 0 else FakeCapture(opened=False)

    factory.calls = 0
    src = WebcamSource(0, retry_s=0.3, capture_factory=lambda d: (factory(d), setattr(factory, "calls", 1))[0])
    start = time.monotonic()
    with pytest.raises(SourceError, match="did not come back within 0.3 s") as info:
        list(src)
    assert 0.25 <= time.monotonic() - start < 2.0
    assert "\n" not in str(info.value)
    src.close()


def test_close_from_another_thread_ends_iteration():
    src = WebcamSource(0, capture_factory=lambda device: FakeCapture())
    count = 0

    def consume():
        nonlocal count
        for _ in src:
            count += 1

    t = threading.Thread(target=consume, name="test-consume")
    t.start()
    time.sleep(0.05)
    src.close()
    t.join(2.0)
    assert not t.is_alive() and count > 0
