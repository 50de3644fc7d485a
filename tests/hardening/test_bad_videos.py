"""Bad and unusual driving videos through the real CLI: each works (frames checked) or is one clean error."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakes import mux_silence

W, H = 256, 320  # the generated portrait's size: every output video has it


def _clip(inputs: Any, check: Any, name: str, count: int = 6, size: tuple[int, int] | None = None,
          **kwargs: Any) -> Path:
    def build(path: Path) -> Path:
        frames = inputs.driving_frames(count) if size is None else [check.resize(f, size)
                                                                    for f in inputs.driving_frames(count)]
        return check.write_video(path, frames, **kwargs)

    return inputs.get(name, build)


def _truncated(inputs: Any, check: Any, name: str, keep: float, **kwargs: Any) -> Path:
    def build(path: Path) -> Path:
        whole = _clip(inputs, check, "whole-" + name, count=12, **kwargs)
        data = whole.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return inputs.get(name, build)


def _mangled(inputs: Any, check: Any) -> Path:
    """An mp4 whose frame data (not its index, which is at the end) has every 50th byte flipped."""
    def build(path: Path) -> Path:
        data = bytearray(_clip(inputs, check, "clean.mp4", count=12).read_bytes())
        for i in range(len(data) // 5, len(data) // 2, 50):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
        return path

    return inputs.get("mangled.mp4", build)


def _no_keyframe_start(inputs: Any, check: Any) -> Path:
    """An MPEG-TS stream whose first packets are P-frames: the opening keyframe was cut away."""
    import av

    def build(path: Path) -> Path:
        whole = _clip(inputs, check, "gop4.ts", count=12, options={"g": "4", "bf": "0", "keyint_min": "4",
                                                                   "sc_threshold": "0"})
        with av.open(str(whole)) as src, av.open(str(path), "w", format="mpegts") as dst:
            ins = src.streams.video[0]
            outs = dst.add_stream_from_template(ins)
            packets = [p for p in src.demux(ins) if p.size]
            assert packets[0].is_keyframe and not packets[1].is_keyframe
            for pkt in packets[1:]:
                pkt.stream = outs
                dst.mux(pkt)
        return path

    return inputs.get("no-keyframe.ts", build)


def _vfr(inputs: Any, check: Any) -> Path:
    """Variable frame rate: 10 frames at irregular times (millisecond time base)."""
    pts = [0, 40, 50, 130, 170, 300, 310, 320, 400, 520]
    return _clip(inputs, check, "vfr.mkv", count=10, fmt="matroska", pts=pts, time_base=Fraction(1, 1000))


def _zero_frames(inputs: Any, check: Any) -> Path:
    """A Matroska file with a video stream that holds no frame (only audio packets follow)."""
    import av

    def build(path: Path) -> Path:
        with av.open(str(path), "w", format="matroska") as out:
            video = out.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
            mux_silence(out, sound, 5)
        return path

    return inputs.get("zero-frames.mkv", build)


def _sideways(inputs: Any, check: Any) -> Path:
    """A phone-style clip: frames stored turned 90 degrees clockwise, display matrix turns them back."""
    def build(path: Path) -> Path:
        frames = [np.ascontiguousarray(np.rot90(f, -1)) for f in inputs.driving_frames(6, (192, 256))]
        return check.write_video(path, frames, rotation=90)

    return inputs.get("rotated.mp4", build)


def _leaves_and_returns(inputs: Any, check: Any) -> Path:
    """5 frames with the face, 2 s (50 frames at 25 fps) of an empty room, 5 frames with the face."""
    def build(path: Path) -> Path:
        faces = inputs.driving_frames(10)
        empty = [np.full_like(faces[0], 70)] * 50
        return check.write_video(path, faces[:5] + empty + faces[5:])

    return inputs.get("away.mp4", build)


def _audio_only(inputs: Any, check: Any) -> Path:
    import av

    def build(path: Path) -> Path:
        with av.open(str(path), "w", format="ipod") as out:
            stream = out.add_stream("aac", rate=16000)
            stream.layout = "mono"
            mux_silence(out, stream, 5)
        return path

    return inputs.get("voice.m4a", build)


# name: (build(inputs, check) -> path, frames expected in the output, or the words of the error)
CASES: dict[str, tuple[Callable[[Any, Any], Path], Any]] = {
    "zero-byte mp4": (lambda i, c: i.bytes_file("empty.mp4", b""), "cannot be read as a video"),
    "truncated mp4 (index at the end)": (lambda i, c: _truncated(i, c, "cut.mp4", 0.5), "cannot be read as a video"),
    "truncated mkv": (lambda i, c: _truncated(i, c, "cut.mkv", 0.6, fmt="matroska"), "frames"),
    "random bytes mp4": (lambda i, c: i.bytes_file("noise.mp4", np.random.default_rng(3).integers(
        0, 256, 30_000, dtype=np.uint8).tobytes()), "cannot be read as a video"),
    "mangled frame data": (_mangled, "concealed or corrupt"),
    "text as mp4": (lambda i, c: i.bytes_file("talk.mp4", b"not a video, just words\n" * 20),
                    "cannot be read as a video"),
    "folder as mp4": (lambda i, c: i.folder_named("clips.mp4"), "is a folder"),
    "audio only": (_audio_only, "has no video stream"),
    "zero frames": (_zero_frames, "has no frames"),
    "one frame": (lambda i, c: _clip(i, c, "one.mp4", count=1), 1),
    "variable frame rate": (_vfr, 10),
    "odd size 641x479": (lambda i, c: _clip(i, c, "odd.mp4", size=(641, 479), pix_fmt="yuv444p"), 6),
    "10-bit h264": (lambda i, c: _clip(i, c, "10bit.mp4", pix_fmt="yuv420p10le"), 6),
    "10-bit hevc": (lambda i, c: _clip(i, c, "10bit-hevc.mp4", codec="libx265", pix_fmt="yuv420p10le",
                                       options={"x265-params": "log-level=none"}), 6),
    "hevc": (lambda i, c: _clip(i, c, "hevc.mp4", codec="libx265", options={"x265-params": "log-level=none"}), 6),
    "vp9 webm": (lambda i, c: _clip(i, c, "vp9.webm", codec="libvpx-vp9", fmt="webm"), 6),
    "mjpeg avi": (lambda i, c: _clip(i, c, "mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p"), 6),
    "mpeg-4 part 2": (lambda i, c: _clip(i, c, "mpeg4.mkv", codec="mpeg4"), 6),
    "starts without a keyframe": (_no_keyframe_start, "frames"),
    "yuv444 h264": (lambda i, c: _clip(i, c, "444.mp4", pix_fmt="yuv444p"), 6),
}


@pytest.mark.parametrize("case", list(CASES))
def test_driving_video(case: str, inputs: Any, check: Any, run_cli: Any, tmp_path: Path) -> None:
    build, expected = CASES[case]
    out = tmp_path / "out.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--driving", build(inputs, check), "--output", out)
    if expected == "concealed or corrupt":
        # FFmpeg's threaded decoder either conceals the damage or reports it, depending on timing:
        # both end well, with every frame rendered or with one clean line.
        if result.code == 0:
            check.video(out, 12, (W, H))
        else:
            check.user_error(result, out, "is corrupt after frame", "re-encode it")
    elif expected == "frames":  # a partly readable file: whatever decodes is rendered, frame for frame
        assert result.code == 0, result.err
        readable = len(check.decoded(build(inputs, check)))
        assert 0 < readable
        check.video(out, readable, (W, H))
    elif isinstance(expected, str):
        check.user_error(result, out, expected)
    else:
        assert result.code == 0, result.err
        check.video(out, expected, (W, H))


def test_one_frame_video_to_a_still(inputs: Any, check: Any, run_cli: Any, tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "out.png"
    result = run_cli("--source", inputs.portrait_file(), "--driving", _clip(inputs, check, "one.mp4", count=1),
                     "--output", out)
    assert result.code == 0, result.err
    assert cv2.imread(str(out)).shape == (H, W, 3)


def test_rotation_metadata_is_applied(inputs: Any, check: Any, run_cli: Any, tmp_path: Path) -> None:
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = run_cli("--source", inputs.portrait_file(), "--driving", _sideways(inputs, check), "--output", out,
                     "--stats-json", stats)
    assert result.code == 0, result.err
    check.video(out, 6, (W, H))
    # Turned upright before tracking, the driving face is found in every frame.
    assert json.loads(stats.read_text())["frames_without_face"] == 0
    from facepaint.plugins.sources.video import VideoSource

    with VideoSource(_sideways(inputs, check)) as video:
        assert video.size == (192, 256)
        assert next(iter(video)).image.shape == (256, 192, 3)


def test_driving_face_leaves_and_comes_back(inputs: Any, check: Any, run_cli: Any, tmp_path: Path) -> None:
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = run_cli("--source", inputs.portrait_file(), "--driving", _leaves_and_returns(inputs, check),
                     "--output", out, "--stats-json", stats)
    assert result.code == 0, result.err
    frames = check.video(out, 60, (W, H))
    assert json.loads(stats.read_text())["frames_without_face"] == 50
    # While the face is away the portrait holds its last pose; when it comes back it moves again.
    away = [np.abs(frames[i].astype(int) - frames[i + 1]).mean() for i in range(6, 53)]
    assert max(away) < 1.0
    assert np.abs(frames[54].astype(int) - frames[-1]).mean() > 0.3


def test_many_frames_to_a_still_is_refused(inputs: Any, check: Any, run_cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run_cli("--source", inputs.portrait_file(), "--driving", inputs.driving_clip(), "--output", out)
    check.user_error(result, out, "use .mp4/.mkv/.mov")
