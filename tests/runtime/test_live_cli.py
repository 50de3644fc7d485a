"""Live mode from the command line: --cam parsing and errors, the recording, one real end-to-end run."""

from __future__ import annotations

import glob
import importlib.util
import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.errors import ConfigError
from facepaint.plugins.base import Frame
from facepaint.plugins.sinks.file import FileSink
from facepaint.runtime.cli import main
from facepaint.runtime.config import AppConfig
from facepaint.runtime.live import open_camera, open_parts
from facepaint.runtime.live_sinks import (
    RECORD_BACKLOG,
    RECORD_BACKLOG_MB,
    BackgroundSink,
    ClockedSink,
    record_backlog,
)
from fakes import CAM, live_parts


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("facepaint-live: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_missing_clip(capsys, tmp_path):
    assert main(["--source", "me.jpg", "--cam", str(tmp_path / "talk.mp4")]) == 2
    assert "a video file of that name was not found" in one_error_line(capsys)


def test_camera_index_that_does_not_exist(capsys):
    assert main(["--source", "me.jpg", "--cam", "7", "--no-vcam"]) == 2
    line = one_error_line(capsys)
    assert "cannot open camera 7" in line and "--cam N" in line


@pytest.mark.skipif(not sys.platform.startswith("linux") or bool(glob.glob("/dev/video*")),
                    reason="needs Linux without any /dev/video* device")
def test_missing_virtual_camera_before_anything_heavy(capsys, media):
    clip = str(media / "driving" / "vr_2.mp4")
    assert main(["--source", "me.jpg", "--cam", clip]) == 2
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1" in one_error_line(capsys)
    assert [t.name for t in threading.enumerate() if t.name.startswith("facepaint-")] == []


def test_preview_without_display(capsys, media, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--source", "me.jpg", "--cam", "0", "--preview"]) == 2
    assert "no display for the preview window" in one_error_line(capsys)


def test_cam_decides_the_source(media):
    clip = str(media / "driving" / "vr_2.mp4")
    cam = open_camera(AppConfig(source="me.jpg", cam=clip, loop=True))
    with cam:
        assert type(cam).__name__ == "PacedFileSource" and cam.loop and cam.fps == 25.0


def test_output_must_be_a_video(tmp_path, media):
    clip = str(media / "driving" / "vr_2.mp4")
    cfg = AppConfig(source="me.jpg", cam=clip, vcam=False, output=str(tmp_path / "x.png"))
    with pytest.raises(ConfigError, match="recording is a video"):
        open_parts(cfg)
    assert list(tmp_path.iterdir()) == []


class Frames:
    def __init__(self) -> None:
        self.got = []

    def write(self, frame):
        self.got.append(frame.index)


def test_clocked_sink_fills_gaps_and_merges_doubles():
    inner = Frames()
    sink = ClockedSink(inner, 25.0)
    img = np.zeros((2, 2, 3), np.uint8)
    for index, pts in [(0, 10.0), (1, 10.04), (2, 10.16), (3, 10.17), (4, 10.20)]:
        sink.write(Frame(img, index, pts, 0.0))
    assert inner.got == [0, 1, 1, 1, 2, 4] and sink.merged == 1


class SlowSink(Frames):
    def __init__(self, delay=0.0, fail_at=None) -> None:
        super().__init__()
        self.delay, self.fail_at, self.closed, self.aborted = delay, fail_at, 0, 0

    def write(self, frame):
        import time

        if frame.index == self.fail_at:
            raise OSError("disk full")
        time.sleep(self.delay)
        super().write(frame)

    def close(self):
        self.closed += 1

    def abort(self):
        self.aborted += 1


def test_background_sink_drops_when_behind_and_finishes_on_close():
    img = np.zeros((2, 2, 3), np.uint8)
    inner = SlowSink(delay=0.01)
    sink = BackgroundSink(inner, "rec-test", capacity=3)
    for i in range(20):  # written at once: the writer can take only a few before the queue overflows
        sink.write(Frame(img, i, i / 25, 0.0))
    sink.close()
    sink.close()
    assert inner.closed == 1 and sink.dropped >= 10 and inner.got[-1] == 19
    assert len(inner.got) + sink.dropped == 20
    assert "facepaint-rec-test" not in [t.name for t in threading.enumerate()]


def test_record_backlog_holds_at_most_its_megabytes():
    """A recorder that cannot keep up keeps its backlog full: at 1280x720 it must not hold more
    than the memory a two-hour call may grow by (the soak's 50 MB), whatever the frame size."""
    for size in ((640, 480), (1280, 720), (1920, 1080), (3840, 2160)):
        frames = record_backlog(size)
        assert 4 <= frames <= RECORD_BACKLOG
        assert frames * size[0] * size[1] * 3 <= RECORD_BACKLOG_MB * 2**20 or frames == 4
    assert record_backlog((640, 480)) == RECORD_BACKLOG and record_backlog((1280, 720)) < RECORD_BACKLOG


def test_background_sink_error_surfaces_and_aborts():
    img = np.zeros((2, 2, 3), np.uint8)
    inner = SlowSink(fail_at=1)
    sink = BackgroundSink(inner, "rec-fail")
    sink.write(Frame(img, 0, 0.0, 0.0))
    sink.write(Frame(img, 1, 0.04, 0.0))
    with pytest.raises(OSError, match="disk full"):
        sink.close()
    assert inner.aborted == 1 and inner.closed == 0
    other = BackgroundSink(SlowSink(), "rec-abort")
    other.abort()
    assert other.sink.aborted == 1


def test_recording_plays_at_real_speed_when_inference_is_slow(tmp_path):
    import av

    out = tmp_path / "rec.mp4"
    rec = BackgroundSink(ClockedSink(FileSink(out, fps=25, size=CAM), 25), "record")
    parts = live_parts(n=25, delay=0.1, sinks=[rec])
    cfg = AppConfig(source="me.jpg", cam="clip.mp4", vcam=False)
    from facepaint.runtime.live import run_live

    assert run_live(cfg, parts) == 0
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 20 <= frames <= 25  # one second of clip, ~10 rendered frames, shown for 1 s at 25 fps


def test_real_end_to_end(tmp_path, media, portrait):
    if importlib.util.find_spec("facepaint.plugins.trackers.mediapipe") is None:
        pytest.skip("the MediaPipe tracker plugin is not there yet")
    from facepaint.engine import reenactment

    if not hasattr(reenactment, "ReenactmentEngine"):
        pytest.skip("ReenactmentEngine is not there yet")
    rec, stats_path = tmp_path / "rec.mp4", tmp_path / "stats.json"
    argv = ["--source", str(portrait), "--cam", str(media / "driving" / "vr_2.mp4"), "--no-vcam",
            "--output", str(rec), "--duration", "3", "--stats-json", str(stats_path)]
    assert main(argv) == 0
    stats = json.loads(stats_path.read_text())
    assert stats["frames_out"] >= 10 and stats["latency_ms"]["p95"] > 0
    assert rec.stat().st_size > 0 and not list(tmp_path.glob(".*partial*"))
    assert [t.name for t in threading.enumerate() if t.name.startswith("facepaint-")] == []
    # x264 writes its settings into the stream: the live recording is encoded with the cheapest
    # preset (ultrafast: no CABAC, one reference, diamond search at subpel 0).
    assert b"cabac=0 ref=1" in rec.read_bytes() and b"subme=0" in rec.read_bytes()


CTRL_C = """
import json, sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fakes import CAM, live_parts
from facepaint.plugins.sinks.file import FileSink
from facepaint.runtime.config import AppConfig
from facepaint.runtime.live import run_live
from facepaint.runtime.live_sinks import BackgroundSink, ClockedSink

out = Path(sys.argv[2])
rec = BackgroundSink(ClockedSink(FileSink(out, fps=25, size=CAM), 25), "record")
parts = live_parts(loop=True, sinks=[rec])
print("READY", flush=True)
try:
    run_live(AppConfig(source="me.jpg", cam="clip.mp4", vcam=False), parts)
except KeyboardInterrupt:
    left = [t.name for t in threading.enumerate() if t.name.startswith("facepaint-")]
    print(json.dumps({"left": left, "exists": out.is_file(), "tracker_closed": parts.session.tracker.closed}))
    sys.exit(130)
"""


def test_ctrl_c_shuts_down_cleanly_and_finalises_the_recording(tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "rec.mp4"
    # preexec: a test run started in the background hands children SIGINT ignored; a terminal does not.
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C, str(Path(__file__).parents[1]), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result == {"left": [], "exists": True, "tracker_closed": 1}
    assert "end-to-end" in stderr  # the stats table is printed on the way out
    assert not list(tmp_path.glob(".*partial*"))
