"""Video/image sources and the file sink on small clips made here with PyAV (fast, no shared media)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facepaint.engine.errors import ConfigError, InputError, SinkError
from facepaint.plugins.base import Frame, Sink, Source, load_plugin
from facepaint.plugins.sinks.file import EncoderConfig, FileSink, output_kind
from facepaint.plugins.sources.image import ImageSource, read_image
from facepaint.plugins.sources.video import VideoSource


@pytest.fixture()
def make_clip(clip_writer):
    """Clip maker: frame i is grey level 20*i; optional audio of the clip's length."""

    def make(path: Path, *, frames: int = 10, rate: Fraction | int = 25, audio: str | None = "aac") -> Path:
        return clip_writer(path, [(20 * i) % 256 for i in range(frames)], rate=rate, audio=audio)

    return make


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {"frames": frames, "rate": v.average_rate, "size": (v.width, v.height),
                "audio": c.streams.audio[0].codec_context.name if c.streams.audio else None}


def frames_of(source) -> list[Frame]:
    return list(source)


def test_plugins_resolve_by_entry_point() -> None:
    assert load_plugin("facepaint.sources", "video") is VideoSource
    assert load_plugin("facepaint.sources", "image") is ImageSource
    assert load_plugin("facepaint.sinks", "file") is FileSink


def test_video_source_decodes_rgb_frames_with_timing(tmp_path: Path, make_clip) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=12, rate=Fraction(1350, 61))
    with VideoSource(clip) as src:
        assert isinstance(src, Source)
        assert src.size == (64, 48) and src.frame_count == 12 and not src.live
        assert src.rate == Fraction(1350, 61) and src.fps == pytest.approx(22.1311, abs=1e-3)
        assert src.audio is not None and src.audio.codec == "aac" and src.audio.channels == 1
        frames = frames_of(src)
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert frames[3].pts == pytest.approx(3 * 61 / 1350, abs=1e-3)
    assert abs(int(frames[5].image.mean()) - 100) <= 3
    assert all(b.captured_at >= a.captured_at for a, b in itertools.pairwise(frames))


def test_video_source_rewinds_to_the_first_frame_in_the_same_file(media: Path) -> None:
    with VideoSource(media / "driving" / "lp_d0.mp4") as src:
        first = frames_of(src)
        src.rewind()
        again = frames_of(src)
    assert len(first) == len(again) == 78
    assert [f.index for f in again] == list(range(78))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again, strict=True))


def test_video_source_without_audio(tmp_path: Path, make_clip) -> None:
    with VideoSource(make_clip(tmp_path / "c.mp4", audio=None)) as src:
        assert src.audio is None


@pytest.mark.parametrize("content", ["random", "empty", "audio", "folder", "missing"])
def test_video_source_refuses_bad_files(tmp_path: Path, content: str, audio_only_file: Path) -> None:
    path = tmp_path / "bad.mp4"
    if content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "audio":
        path = audio_only_file
    elif content == "folder":
        path.mkdir()
    with pytest.raises(InputError) as info:
        VideoSource(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    if content == "audio":
        assert "has no video stream" in message


def test_image_source_and_reader(tmp_path: Path) -> None:
    img = np.zeros((30, 41, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "f.png"), img[:, :, ::-1])
    src = ImageSource(tmp_path / "f.png")
    assert src.size == (41, 30) and src.frame_count == 1
    (frame,) = list(src)
    assert frame.index == 0 and frame.pts == 0.0 and frame.image[0, 0].tolist() == [200, 0, 0]
    (tmp_path / "n.jpg").write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        read_image(tmp_path / "n.jpg", "source portrait")
    with pytest.raises(InputError, match="not found"):
        ImageSource(tmp_path / "missing.png")
    with pytest.raises(InputError, match="not a file"):
        read_image(tmp_path)


def test_output_kind_checks(tmp_path: Path) -> None:
    assert output_kind(tmp_path / "a.MP4") == "video"
    assert output_kind(tmp_path / "a.jpeg") == "image"
    with pytest.raises(ConfigError, match=r"\.mp4, \.mkv, \.mov.*\.png"):
        output_kind(tmp_path / "a.avi")
    with pytest.raises(InputError, match="does not exist"):
        output_kind(tmp_path / "nope" / "a.mp4")
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        output_kind(tmp_path / "d.mp4")


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_file_sink_copies_video_timing_and_audio(tmp_path: Path, make_clip, suffix: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=15, rate=Fraction(1350, 61))
    out = tmp_path / f"out{suffix}"
    with VideoSource(clip) as src, FileSink(out, fps=src.rate, size=src.size, audio=src.audio,
                                            encoder=EncoderConfig(preset="ultrafast")) as sink:
        assert isinstance(sink, Sink)
        for frame in src:
            sink.write(frame)
            assert not out.exists()  # written beside it, renamed at close
    info = probe(out)
    assert info == {"frames": 15, "rate": Fraction(1350, 61), "size": (64, 48), "audio": "aac"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", out.name])


def test_file_sink_reencodes_audio_the_container_cannot_take(tmp_path: Path, make_clip) -> None:
    clip = make_clip(tmp_path / "in.mkv", frames=10, audio="pcm_s16le")
    out = tmp_path / "out.mp4"
    with VideoSource(clip) as src, FileSink(out, fps=src.rate, size=src.size, audio=src.audio) as sink:
        assert src.audio.codec == "pcm_s16le"
        for frame in src:
            sink.write(frame)
    assert probe(out)["audio"] == "aac" and probe(out)["frames"] == 10


def test_file_sink_pads_odd_sizes_by_one_pixel(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    img = np.full((49, 65, 3), 128, np.uint8)
    with FileSink(out, fps=30, size=(65, 49)) as sink:
        for i in range(3):
            sink.write(Frame(img, i, i / 30, 0.0))
    assert probe(out)["size"] == (66, 50) and probe(out)["frames"] == 3


def test_file_sink_abort_and_errors_leave_no_file(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    img = np.zeros((48, 64, 3), np.uint8)
    sink = FileSink(out, fps=25, size=(64, 48))
    sink.write(Frame(img, 0, 0.0, 0.0))
    sink.abort()
    sink.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SinkError, match="64x48"):
        with FileSink(out, fps=25, size=(64, 48)) as sink:
            sink.write(Frame(img, 0, 0.0, 0.0))
            sink.write(Frame(np.zeros((10, 10, 3), np.uint8), 1, 0.04, 0.0))
    with pytest.raises(SinkError, match="no frame"):
        FileSink(out, fps=25, size=(64, 48)).close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_file_sink_writes_one_still_atomically(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"still{suffix}"
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 2] = 255  # blue in RGB
    sink = FileSink(out)
    sink.write(Frame(img, 0, 0.0, 0.0))
    with pytest.raises(SinkError, match="one frame"):
        sink.write(Frame(img, 1, 0.0, 0.0))
    assert not out.exists()
    sink.close()
    sink.close()
    back = read_image(out)
    assert back.shape == (20, 30, 3) and back[5, 5, 2] > 240 and back[5, 5, 0] < 15
    assert list(tmp_path.iterdir()) == [out]
