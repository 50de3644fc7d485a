"""Shared fixtures: real faces from ../shared/media (skipped with a reason where absent) and skimage."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fakes import mux_silence

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACEPAINT_MEDIA", ROOT.parent / "shared" / "media"))


@pytest.fixture(scope="session")
def media() -> Path:
    """The shared test media folder; tests that need it skip where it is absent."""
    if not (MEDIA / "MANIFEST.md").is_file():
        pytest.skip(f"test media not found at {MEDIA} (set FACEPAINT_MEDIA or put shared/ beside the clone)")
    return MEDIA


@pytest.fixture(scope="session")
def portrait(media: Path) -> Path:
    """A frontal portrait (Obama, 910x1137)."""
    return media / "portraits" / "obama.jpg"


@pytest.fixture(scope="session")
def talking_clip(media: Path) -> Path:
    """A talking-head clip with wide mouth opening and blinks (512x512, 30 fps, 448 frames, audio)."""
    return media / "driving" / "lp_d10.mp4"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut (512x512 RGB uint8): one face, always available."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture()
def audio_only_file(tmp_path: Path) -> Path:
    """An AAC-only .m4a (no video stream): a driving file that must be refused."""
    import av

    path = tmp_path / "voice.m4a"
    out = av.open(str(path), "w", format="ipod")
    stream = out.add_stream("aac", rate=16000)
    stream.layout = "mono"
    mux_silence(out, stream, 10)
    out.close()
    return path


@pytest.fixture()
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tensorrt`` fail as it does where TensorRT is not installed."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "tensorrt":
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def write_clip(path: Path, levels: Sequence[int], *, size: tuple[int, int] = (64, 48),
               rate: Fraction | int = 25, audio: str | None = "aac", audio_rate: int = 16000) -> Path:
    """Write a small H.264 clip with PyAV: frame i is flat grey ``levels[i]``; ``audio`` (a codec
    name, or None for no audio stream) is silence of the clip's length."""
    import av

    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=rate)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    sound = None
    if audio is not None:
        sound = out.add_stream(audio, rate=audio_rate)
        sound.layout = "mono"
    samples = int(audio_rate / float(rate))
    fmt, dtype = ("fltp", np.float32) if audio == "aac" else ("s16", np.int16)
    for i, level in enumerate(levels):
        frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), level, np.uint8), format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
        if sound is not None:
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype), format=fmt, layout="mono")
            chunk.sample_rate, chunk.pts = audio_rate, i * samples
            out.mux(sound.encode(chunk))
    out.mux(video.encode(None))
    if sound is not None:
        out.mux(sound.encode(None))
    out.close()
    return path


@pytest.fixture(scope="session")
def clip_writer() -> Callable[..., Path]:
    """``write_clip``: test modules build their own clip makers on it."""
    return write_clip


# Where lp_d10 is caught mid-word: jawOpen 0.61 at frame 12, closed again around frames 30-60.
MIDWORD_START = 12
MIDWORD_FRAMES = 90


@pytest.fixture(scope="session")
def midword_clip(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lp_d10 cut to start on an open mouth (90 frames, no audio): a driver that does not start
    neutral. Written to a temporary folder, never kept."""
    import av

    from facepaint.runtime.evaluation.streams import iter_frames, video_rate

    src = media / "driving" / "lp_d10.mp4"
    path = tmp_path_factory.mktemp("midword") / "midword.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=video_rate(str(src)))
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "12", "preset": "veryfast"}
        for i, rgb in enumerate(iter_frames(str(src))):
            if i < MIDWORD_START:
                continue
            if i >= MIDWORD_START + MIDWORD_FRAMES:
                break
            if i == MIDWORD_START:
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    return path
