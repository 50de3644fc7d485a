"""Video file source: PyAV decoding to RGB frames, plus what the file sink needs to copy the audio."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.plugins.base import Frame

_HINT = "give a video file such as .mp4"


@dataclass(frozen=True)
class AudioInfo:
    """The audio stream of a video file, as the file sink needs it to copy or re-encode it.

    Attributes:
        path: The file that holds the stream.
        stream_index: Index of the stream in that file's container (``stream.index``).
        codec: Codec name (``aac``, ``mp3``, ``pcm_s16le``, ...).
        sample_rate: Samples per second.
        channels: Channel count.
    """

    path: str
    stream_index: int
    codec: str
    sample_rate: int
    channels: int


def open_video(path: str | Path, what: str = "driving video") -> tuple[Any, Any]:
    """Open ``path`` with PyAV and return ``(container, video_stream)``.

    Args:
        path: The file.
        what: How the file is named in error messages.

    Raises:
        InputError: Missing, unreadable, not a media file, or without a video stream.
    """
    import av

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {path} is a folder; {_HINT} inside it")
    if not p.is_file():
        raise InputError(f"{what} {path} not found; check the path ({_HINT})")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} cannot be read as a video ({_short(exc)}); {_HINT}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{what} {path} has no video stream; {_HINT}")
    return container, container.streams.video[0]


class VideoSource:
    """Frames of a video file, decoded by PyAV (threaded) into RGB.

    Attributes:
        path: The file.
        fps: Average frame rate (``rate`` keeps it exact, e.g. 1350/61 for 22.13 fps).
        rate: The frame rate as a Fraction, for the encoder.
        size: (width, height).
        frame_count: Frames in the stream per its header, None when the container does not say.
        live: False: a file is decoded as fast as the pipeline takes frames.
        audio: The first audio stream, None when the file has none.

    Args:
        path: The video file.

    Raises:
        InputError: When the file is missing, unreadable, corrupt or has no video stream.
    """

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._container, stream = open_video(path)
        self._stream = stream
        if stream.codec_context is None:  # a codec FFmpeg does not know (or a mangled codec tag)
            self._container.close()
            raise InputError(f"driving video {path} uses a video codec FFmpeg cannot decode; re-encode it to H.264 "
                             f"or {_HINT}")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or not stream.width or not stream.height:
            self._container.close()
            raise InputError(f"driving video {path} has no frame rate or size in its video stream; {_HINT}")
        self.rate = Fraction(rate)
        self.fps = float(self.rate)
        self.size = (int(stream.width), int(stream.height))
        if _first_rotation(self.path) % 180:  # frames come out turned upright: a 90-degree turn swaps w, h
            self.size = self.size[::-1]
        self.frame_count: int | None = int(stream.frames) or None
        self.audio = self._audio_info()
        # Frame/slice threads inside FFmpeg (decoding is no bottleneck); set before the codec opens
        # at the first decode, since it cannot change after (a rewound file decodes again).
        stream.thread_type = "AUTO"
        self._closed = False

    def _audio_info(self) -> AudioInfo | None:
        streams = self._container.streams.audio
        if not streams:
            return None
        a = streams[0]
        ctx = a.codec_context
        if ctx is None:  # an audio codec FFmpeg does not know: dropping the sound silently would surprise
            self._container.close()
            raise InputError(f"driving video {self.path} has an audio stream FFmpeg cannot decode; remove it "
                             f"(ffmpeg -i {self.path} -an -c:v copy silent.mp4) or re-encode the file")
        return AudioInfo(self.path, int(a.index), str(ctx.name), int(ctx.sample_rate or a.rate or 0),
                         int(ctx.channels or 0))

    def __iter__(self) -> Iterator[Frame]:
        """Decode every frame; the index counts decoded frames, pts is in seconds.

        Raises:
            InputError: When the stream is corrupt part-way through.
        """
        import av

        index = 0
        try:
            for vf in self._container.decode(self._stream):
                image = upright(vf.to_ndarray(format="rgb24"), vf.rotation)
                pts = float(vf.time) if vf.time is not None else index / self.fps
                yield Frame(image=image, index=index, pts=pts, captured_at=time.perf_counter())
                index += 1
        except av.FFmpegError as exc:
            raise InputError(f"driving video {self.path} is corrupt after frame {index} ({_short(exc)}); "
                             "re-encode it or give another file") from None

    def rewind(self) -> None:
        """Start the next iteration from the first frame again, in the same open file.

        Why not reopen: a looping file camera that reopens its clip probes it twice and starts a
        new set of decoder threads each pass, which a long run sees as thread-count spikes; a seek
        reuses the decoder (PyAV flushes it on seek).
        """
        self._container.seek(0)

    def close(self) -> None:
        """Close the file (once)."""
        if not self._closed:
            self._closed = True
            self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_rotation(path: str) -> int:
    """The display rotation of the first decodable frame (0 when none decodes): PyAV exposes it on
    frames only, and sizes must be known before the first frame is read."""
    import av

    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                return round(float(frame.rotation or 0))
    except av.FFmpegError:
        pass  # a stream that is corrupt from the start is reported when it is iterated
    return 0


def upright(image: np.ndarray, rotation: float | int) -> np.ndarray:
    """Apply a frame's display rotation (degrees counter-clockwise, as phones record portrait video).

    FFmpeg's players turn such frames before showing them; a tracker given the stored pixels would
    see a face lying on its side.
    """
    turns = round(float(rotation or 0) / 90.0) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, for one-line errors."""
    import re

    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    # PyAV's "[Errno 1094995529] Invalid data found when processing input: 'avcodec_send_packet()'":
    # the number and the C function name mean nothing to a user.
    return re.sub(r"^\[Errno -?\d+\] |: '\w+\(\)'$", "", text[0])
