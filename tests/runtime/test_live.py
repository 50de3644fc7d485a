"""Live mode with fake tracker/engine: bounded latency under slow inference, drops, shutdown, vcam pacing."""

from __future__ import annotations

import itertools
import json
import threading
import time

import numpy as np
import pytest
import pyvirtualcam

from facepaint.engine.errors import SourceError
from facepaint.plugins.sinks.vcam import VirtualCamConfig, VirtualCamSink
from facepaint.plugins.sources.paced import PacedFileSource
from facepaint.runtime.config import AppConfig
from facepaint.runtime.hud import window_latency_ms
from facepaint.runtime.live import LiveParts, LiveRun, run_live
from fakes import CAM, Clip, FakeEngine, FakeSession, FakeTracker, ListSink, frame_number
from fakes import live_parts as parts


def live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("facepaint-")]


def test_slow_inference_drops_frames_and_latency_stays_bounded():
    p = parts(delay=0.1, loop=True)
    stats = LiveRun(p, duration=3.0).run()
    assert live_threads() == []
    # 100 ms inference on a 25 fps camera: ~10 fps out, the rest dropped and counted.
    assert 6 <= stats["fps"] <= 11
    assert stats["dropped"] >= stats["frames_in"] * 0.4
    assert stats["frames_in"] >= stats["frames_out"] + stats["dropped"] - stats["drops"].get("camera", 0) - 4
    # Capture -> output: at most a queued frame period + one inference + overheads, never growing.
    assert stats["latency_ms"]["p95"] < 300
    series = stats["latency_ms_by_time"]
    first, last = window_latency_ms(series, 0, 1), window_latency_ms(series, 2, 3)
    assert first is not None and last is not None and last < first + 60
    assert set(stats["stages"]) == {"capture", "track", "infer", "composite", "output"}
    assert stats["stages"]["infer"]["p50"] >= 95


def test_frames_reach_sinks_letterboxed_and_face_loss_is_passed_on():
    tracker = FakeTracker(has_face=frame_number(lambda i: not 10 <= i < 20))
    p = parts(n=30, tracker=tracker)
    stats = LiveRun(p).run()  # the clip ends: the run ends by itself
    sink = p.sinks[0]
    assert stats["frames_out"] == len(sink.frames) >= 25 and sink.closed == 1 and tracker.closed == 1
    image = sink.frames[0][1].image
    assert image.shape == (CAM[1], CAM[0], 3)  # 30x40 portrait letterboxed into 64x48
    assert image[:, :, 0].max() == 128 and image[0, 0, 0] == 0
    assert False in p.session.engine.faces and p.session.engine.faces[-1] is True  # lost, then found again
    ts = tracker.timestamps
    assert all(b > a for a, b in itertools.pairwise(ts))


def test_vcam_receives_frames_paced_at_camera_fps():
    sent = []

    class Backend:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.shape = (height, width, 3)

        def send(self, frame):
            sent.append((time.perf_counter(), frame.size))

        def close(self):
            sent.append("closed")

        def device(self):
            return "rec"

        def native_fourcc(self):
            return None

    pyvirtualcam.register_backend("rec-live", Backend)
    try:
        p = parts(n=40, sinks=[])
        p.sinks.append(VirtualCamSink(VirtualCamConfig(size=CAM, backend="rec-live"), fps=p.camera.fps))
        stats = LiveRun(p).run()
    finally:
        pyvirtualcam.camera.BACKENDS.pop("rec-live", None)
    assert sent[-1] == "closed"
    times = [t for t, size in sent[:-1]]
    assert all(size == CAM[0] * CAM[1] * 3 for _, size in sent[:-1])
    assert len(times) >= 36
    assert np.median(np.diff(times)) == pytest.approx(0.04, abs=0.006)
    assert stats["vcam"]["sent"] == len(times)


class QuitPreview:
    """Preview stand-in: presses p, c and space, then q; checks it is pumped on the main thread."""

    def __init__(self) -> None:
        self.keys = iter([None] * 5 + ["passthrough"] + [None] * 5 + ["recalibrate", "pause"] + [None] * 5)
        self.frames, self.closed, self.threads = [], 0, set()

    def write(self, frame):
        self.frames.append(frame)

    def pump(self, info, wait_ms=1):
        self.threads.add(threading.current_thread().name)
        time.sleep(wait_ms / 1000)
        return next(self.keys, "quit")

    def close(self):
        self.closed += 1


def test_preview_hotkeys_and_quit():
    preview = QuitPreview()
    p = parts(loop=True, preview=preview)
    run = LiveRun(p, duration=10.0)
    start = time.monotonic()
    run.run()
    assert time.monotonic() - start < 5.0 and live_threads() == []
    assert preview.threads == {threading.main_thread().name} and preview.closed == 1
    assert p.session.engine.recalibrated == 1 and run.controls.passthrough and run.controls.paused
    assert any(int(f.image[24, 32, 0]) != 128 for f in preview.frames)  # passthrough showed the camera


def test_camera_error_stops_everything_and_propagates(tmp_path):
    class Broken(Clip):
        def __iter__(self):
            yield from list(super().__iter__())[:5]
            raise SourceError("camera 0 stopped delivering frames")

    camera = PacedFileSource("clip", opener=lambda p: Broken())
    sink = ListSink()
    cfg = AppConfig(source="me.jpg", cam="clip.mp4", vcam=False, stats_json=str(tmp_path / "s.json"))
    with pytest.raises(SourceError, match="stopped delivering"):
        run_live(cfg, LiveParts(camera, FakeSession(FakeTracker(), FakeEngine()), [sink], None, CAM))
    assert live_threads() == [] and sink.closed == 1
    assert json.loads((tmp_path / "s.json").read_text())["frames_in"] == 5


def test_run_live_duration_stats_json_and_table(tmp_path, capsys):
    out = tmp_path / "stats.json"
    cfg = AppConfig(source="me.jpg", cam="clip.mp4", vcam=False, duration=0.6, loop=True, stats_json=str(out))
    start = time.monotonic()
    assert run_live(cfg, parts(loop=True)) == 0
    assert time.monotonic() - start < 2.0 and live_threads() == []
    stats = json.loads(out.read_text())
    for key in ("fps", "latency_ms", "dropped", "frames_in", "frames_out", "stages", "latency_ms_by_time"):
        assert key in stats
    assert set(stats["latency_ms"]) >= {"p50", "p95"}
    err = capsys.readouterr().err
    assert "end-to-end" in err and "infer" in err and "delivered" in err and "of 25.0 fps" in err


def test_live_stats_series_and_windows():
    from facepaint.runtime.hud import LiveStats, format_table

    now = [0.0]
    stats = LiveStats(clock=lambda: now[0])
    stats.start()
    for i in range(50):  # 25 fps for 2 s; latency 40 ms in the first second, 60 ms in the second
        now[0] = i * 0.04
        stats.frame_out(now[0] - (0.04 if i < 25 else 0.06))
    series = stats.to_dict()["latency_ms_by_time"]
    assert [(r["t"], r["n"]) for r in series] == [(0, 25), (1, 25)]
    assert window_latency_ms(series, 0, 1) == pytest.approx(40.0)
    assert window_latency_ms(series, 1, 2) == pytest.approx(60.0)
    assert window_latency_ms(series, 5, 9) is None
    assert stats.recent_latency_ms == pytest.approx(60.0)
    table = format_table(stats.to_dict(), target_fps=25.0)
    assert "end-to-end" in table and "of 25.0 fps" in table and "dropped 0 (none)" in table


def test_live_stats_minutes_outlive_the_hour_of_seconds():
    from facepaint.runtime.hud import SERIES_SECONDS, LiveStats

    now = [0.0]
    stats = LiveStats(clock=lambda: now[0])
    stats.start()
    seconds = SERIES_SECONDS + 180  # an hour and three minutes, 2 frames a second
    for i in range(seconds * 2):
        now[0] = i * 0.5
        stats.frame_out(now[0] - (0.03 if now[0] < 60 else 0.05))  # 30 ms in the first minute, 50 after
    out = stats.to_dict()
    assert out["latency_ms_by_time"][0]["t"] > 60  # the first minute has left the per-second series
    minutes = out["latency_ms_by_minute"]
    assert [m["minute"] for m in minutes] == list(range(seconds // 60))
    assert minutes[0]["p95"] == pytest.approx(30.0) and minutes[-1]["p95"] == pytest.approx(50.0)
    assert minutes[0]["n"] == 120 and minutes[-1]["n"] == 118  # the open second is not counted
