"""VirtualCamSink through the real pyvirtualcam.Camera in front of a recording backend."""

from __future__ import annotations

import glob
import sys

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import decode_fourcc

from facepaint.engine.errors import SinkError
from facepaint.plugins.base import Frame
from facepaint.plugins.sinks.vcam import VirtualCamConfig, VirtualCamSink, letterbox, missing_vcam_hint
from fakes import RecordingBackend


@pytest.fixture()
def recording():
    RecordingBackend.instances.clear()
    pyvirtualcam.register_backend("recording", RecordingBackend)
    yield RecordingBackend.instances
    pyvirtualcam.camera.BACKENDS.pop("recording", None)


def frame(image: np.ndarray, index: int = 0) -> Frame:
    return Frame(image=image, index=index, pts=index / 25, captured_at=0.0)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_frames_arrive_letterboxed_rgb(recording):
    cfg = VirtualCamConfig(size=(64, 48), backend="recording")
    with VirtualCamSink(cfg, fps=25) as sink:
        tall = np.full((40, 20, 3), 200, np.uint8)  # portrait-shaped: bars left and right
        sink.write(frame(tall))
        assert sink.device == "/dev/video-rec"
    backend = recording[0]
    assert (backend.width, backend.height, backend.fps) == (64, 48, 25.0)
    assert decode_fourcc(backend.fourcc) == pyvirtualcam.PixelFormat.RGB.value
    assert backend.closed == 1
    got = backend.frames[0].reshape(48, 64, 3)
    assert got.dtype == np.uint8
    assert got[:, :8].max() == 0 and got[:, -8:].max() == 0  # black bars
    assert got[24, 32].tolist() == [200, 200, 200]


def test_config_fps_wins_and_close_runs_once(recording):
    sink = VirtualCamSink(VirtualCamConfig(size=(32, 32), fps=30, backend="recording", device="dev9"), fps=25)
    assert sink.fps == 30 and recording[0].fps == 30 and sink.device == "dev9"
    sink.close()
    sink.close()
    sink.abort()
    assert recording[0].closed == 1
    sink.write(frame(np.zeros((32, 32, 3), np.uint8)))  # after close: ignored, no error
    assert recording[0].frames == []


def test_rate_limit_skips_surplus_frames_without_sleeping(recording):
    clock = FakeClock()
    sink = VirtualCamSink(VirtualCamConfig(size=(32, 32), backend="recording"), fps=25, clock=clock)
    image = np.zeros((32, 32, 3), np.uint8)
    for i in range(100):  # 50 fps into a 25 fps camera: every other frame is surplus
        clock.t = 100.0 + i * 0.02
        sink.write(frame(image, i))
    assert sink.sent == 50 and sink.skipped == 50
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, 100)
    sink2 = VirtualCamSink(VirtualCamConfig(size=(32, 32), backend="recording"), fps=25, clock=clock)
    for i in range(100):  # on time with +-10 ms jitter: nothing is skipped
        clock.t = 200.0 + i * 0.04 + jitter[i]
        sink2.write(frame(image, i))
    assert sink2.skipped == 0
    clock.t = 300.0  # after a pause, no burst is banked: the next frames are paced again
    sink2.write(frame(image))
    clock.t = 300.001
    sink2.write(frame(image))
    assert sink2.skipped == 1


NO_LOOPBACK = pytest.mark.skipif(
    not sys.platform.startswith("linux") or bool(glob.glob("/dev/video*")),
    reason="needs Linux without any /dev/video* device (the real 'no virtual camera' path)",
)


@NO_LOOPBACK
def test_missing_device_is_one_line_with_the_fix():
    # This machine has the v4l2loopback backend but no loopback device: the real failure path.
    with pytest.raises(SinkError) as info:
        VirtualCamSink(VirtualCamConfig(size=(64, 48)), fps=25)
    msg = str(info.value)
    assert "\n" not in msg and "no virtual camera" in msg
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1" in msg and "--no-vcam" in msg


def test_factory_failure_and_other_platforms():
    def broken(*args, **kwargs):
        raise RuntimeError("'obs' backend: OBS Virtual Camera is not installed\nsecond line")

    with pytest.raises(SinkError, match="OBS Virtual Camera is not installed / second line"):
        VirtualCamSink(VirtualCamConfig(device="x"), fps=25, camera_factory=broken)
    for platform in ("darwin", "win32"):
        assert "OBS Studio >= 30" in missing_vcam_hint(platform)
    assert "modprobe" in missing_vcam_hint("linux")


def test_unknown_backend_lists_known_ones():
    with pytest.raises(SinkError, match="unknown virtual camera backend 'nope'"):
        VirtualCamSink(VirtualCamConfig(backend="nope"), fps=25)


@pytest.mark.parametrize("bad", [{"size": (8, 8)}, {"fps": 0.0}, {"fps": 1000.0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        VirtualCamConfig(**bad)


def test_letterbox_keeps_aspect_and_is_a_no_op_at_size():
    wide = np.full((10, 40, 3), 255, np.uint8)
    out = letterbox(wide, (40, 40))
    assert out.shape == (40, 40, 3)
    assert out[:14].max() == 0 and out[-14:].max() == 0 and out[20].min() == 255
    same = np.zeros((48, 64, 3), np.uint8)
    assert letterbox(same, (64, 48)) is same


def test_hud_text_and_display_detection():
    from facepaint.plugins.sinks.preview import HudInfo, display_available, draw_hud

    info = HudInfo(fps=24.5, latency_ms=61.0, dropped=7, face=False, passthrough=True)
    assert info.lines() == ["24.5 fps   61 ms  drops 7  NO FACE", "PASSTHROUGH"]
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_hud(image, info)
    assert out.shape == image.shape and out.any() and not image.any()
    assert not display_available("linux", {}) and display_available("linux", {"DISPLAY": ":1"})
    assert display_available("darwin", {}) and display_available("win32", {})
