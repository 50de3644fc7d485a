"""run_offline with a fake tracker and engine on clips made here: fast, independent of the models."""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facepaint.engine.errors import ConfigError, InputError, NoFaceError
from facepaint.runtime import offline, session
from facepaint.runtime.config import build_app_config
from fakes import FakeEngine, FakeTracker, fake_face


@pytest.fixture()
def make_clip(clip_writer):
    """Clip maker: frames are grey (a fake "face") except the ``dark`` ones (black: "no face")."""

    def make(path: Path, *, frames: int = 8, rate: Fraction | int = 25, audio: bool = True,
             dark: tuple[int, ...] = ()) -> Path:
        levels = [0 if i in dark else 120 for i in range(frames)]
        return clip_writer(path, levels, rate=rate, audio="aac" if audio else None)

    return make


@pytest.fixture()
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict:
    made: dict = {"tracker": FakeTracker(), "engine": None, "fail_at": None}

    def engine(config, portrait, *, reference=None, **kw):
        made["engine"] = FakeEngine(portrait.image, fail_at=made["fail_at"])
        made["engine"].reference = reference.face if reference is not None else None  # the neutral it is given
        made["portrait"] = portrait
        return made["engine"]

    monkeypatch.setattr(session, "open_tracker", lambda config, live: made["tracker"])
    monkeypatch.setattr(session, "open_engine", engine)
    return made


@pytest.fixture()
def portrait_png(tmp_path: Path) -> Path:
    path = tmp_path / "me.png"
    cv2.imwrite(str(path), np.full((37, 51, 3), 200, np.uint8))  # odd size on purpose
    return path


def _config(**kw):
    return build_app_config({"progress": False, **{k: str(v) if isinstance(v, Path) else v for k, v in kw.items()}})


def test_renders_every_frame_with_audio_and_stats(tmp_path, fakes, portrait_png, make_clip, capsys) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=9, rate=Fraction(1350, 61), dark=(2, 5))
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    assert offline.run_offline(_config(source=portrait_png, driving=clip, output=out, stats_json=stats)) == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert sum(1 for _ in c.decode(v)) == 9
        assert v.average_rate == Fraction(1350, 61)
        assert (v.width, v.height) == (52, 38)  # the portrait's size, padded to even
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
    engine = fakes["engine"]
    assert [has for has, _ in engine.seen] == [True, True, False, True, True, False, True, True, True]
    assert engine.seen[3][1] == pytest.approx(3 * 61 / 1350, abs=1e-3)
    # The portrait in image mode (None), then the look-ahead of --reference auto and the render,
    # each a stream of its own (the tracker is reset before each).
    tracker = fakes["tracker"]
    assert tracker.timestamps[0] is None and len(tracker.resets) == 2
    start, middle = tracker.resets
    for stream in (tracker.timestamps[start:middle], tracker.timestamps[middle:]):
        assert len(stream) == 9 and stream == sorted(set(stream))
    data = json.loads(stats.read_text())
    assert data["frames_in"] == data["frames_out"] == data["frames_written"] == 9
    assert data["frames_without_face"] == 2 and data["dropped"] == 0
    # Frames 0-7 lie within the calm window of a frame without a face: 8 is the calm one.
    assert data["reference"] == "auto, frame 8" and engine.reference is not None
    assert set(data["stages"]) == {"decode", "track", "smooth", "render", "encode"}
    assert {"p50", "p95"} <= set(data["latency_ms"]) and data["fps"] > 0
    err = capsys.readouterr().err
    assert "wrote" in err and "9 frames" in err and "2 without a face" in err and str(out) in err
    assert fakes["tracker"].closed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.mp4", "me.png", "out.mp4", "stats.json"]


def test_driving_without_audio_gives_video_without_audio(tmp_path, fakes, portrait_png, make_clip) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=4, audio=False)
    out = tmp_path / "out.mkv"
    offline.run_offline(_config(source=portrait_png, driving=clip, output=out))
    with av.open(str(out)) as c:
        assert not c.streams.audio and c.streams.video[0].frames in (0, 4)


def test_duration_limits_the_frames(tmp_path, fakes, portrait_png, make_clip) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=10, rate=25)
    out = tmp_path / "out.mp4"
    offline.run_offline(_config(source=portrait_png, driving=clip, output=out, duration=0.2))
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".mp4"])
def test_still_driving(tmp_path, fakes, portrait_png, suffix) -> None:
    driving = tmp_path / "face.jpg"
    cv2.imwrite(str(driving), np.full((40, 40, 3), 90, np.uint8))
    out = tmp_path / f"out{suffix}"
    offline.run_offline(_config(source=portrait_png, driving=driving, output=out))
    if suffix == ".mp4":
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 1
    else:
        assert cv2.imread(str(out)).shape == (37, 51, 3)  # stills keep the exact size


def test_video_driving_to_image_output_is_a_config_error(tmp_path, fakes, portrait_png, make_clip) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=3)
    with pytest.raises(ConfigError, match="3 frames"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=tmp_path / "o.png"))
    assert not (tmp_path / "o.png").exists()


def test_face_index_and_no_face(tmp_path, fakes, portrait_png, make_clip) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=2)
    fakes["tracker"].faces = 2
    out = tmp_path / "o.mp4"
    offline.run_offline(_config(source=portrait_png, driving=clip, output=out, face_index=1))
    assert fakes["portrait"].face.area < fake_face(51, 37).area  # the second (smaller) face
    out.unlink()
    with pytest.raises(InputError, match="2 faces found"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=out, face_index=2))
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(NoFaceError, match="no face found in the source portrait"):
        offline.run_offline(_config(source=black, driving=clip, output=out))
    assert not out.exists()


def test_error_mid_run_leaves_no_file_and_no_thread(tmp_path, fakes, portrait_png, make_clip) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=20)
    fakes["fail_at"] = 7
    out = tmp_path / "o.mp4"
    with pytest.raises(InputError, match="engine refused"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.mp4", "me.png"]
    assert not [t for t in threading.enumerate() if t.name.startswith("facepaint-")]
    assert fakes["tracker"].closed == 1


def test_ctrl_c_leaves_no_file(tmp_path, fakes, portrait_png, make_clip, monkeypatch) -> None:
    clip = make_clip(tmp_path / "d.mp4", frames=20)
    out = tmp_path / "o.mp4"

    def interrupted(self, timeout=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(offline.Pipeline, "join", interrupted)
    with pytest.raises(KeyboardInterrupt):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.mp4", "me.png"]
    assert not [t for t in threading.enumerate() if t.name.startswith("facepaint-") and t.is_alive()]


def test_output_is_checked_before_the_tracker_loads(tmp_path, portrait_png, monkeypatch, make_clip) -> None:
    def no(config, live):
        raise AssertionError("the tracker must not load for a bad output path")

    monkeypatch.setattr(session, "open_tracker", no)
    clip = make_clip(tmp_path / "d.mp4", frames=2)
    with pytest.raises(ConfigError, match="unsupported extension"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=tmp_path / "o.gif"))
    with pytest.raises(InputError, match="does not exist"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=tmp_path / "x" / "o.mp4"))
    with pytest.raises(InputError, match="--stats-json"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=tmp_path / "o.mp4",
                                    stats_json=tmp_path / "x" / "s.json"))
    with pytest.raises(ConfigError, match="same file as --driving"):
        offline.run_offline(_config(source=portrait_png, driving=clip, output=clip))
    with pytest.raises(InputError, match="source portrait"):
        offline.run_offline(_config(source=tmp_path / "none.jpg", driving=clip, output=tmp_path / "o.mp4"))
