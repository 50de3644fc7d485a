"""File sink: H.264 video through PyAV with the driving audio, or one still image; written atomically.

Everything is written to a hidden temporary file in the output's folder and renamed into place by
``close()`` (``os.replace``, atomic on one file system), so an interrupted or failed run never
leaves a partial file at the output path; ``abort()`` deletes the temporary file.
"""

from __future__ import annotations

import errno
import glob
import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facepaint.engine.errors import ConfigError, InputError, SinkError
from facepaint.plugins.base import Frame, SinkContext
from facepaint.plugins.media import CONTAINERS, WRITE_IMAGES, WRITE_VIDEOS

if TYPE_CHECKING:
    from facepaint.plugins.sources.video import AudioInfo

CRF_RANGE = (0, 51)  # x264's quality scale
_PARTIAL = ".partial"  # temporary files are ".<name>.<random>.partial<suffix>"
# Audio codecs each container takes as they are; anything else is re-encoded to AAC.
_COPYABLE = {
    ".mp4": {"aac", "mp3", "alac"},
    ".mov": {"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le"},
    ".mkv": {"aac", "mp3", "alac", "opus", "vorbis", "flac", "ac3", "pcm_s16le", "pcm_s24le"},
}


@dataclass(frozen=True)
class EncoderConfig:
    """How videos are written.

    Attributes:
        codec: Video codec (libx264).
        crf: H.264 constant rate factor (0-51, lower is better quality).
        preset: x264 preset (ultrafast ... veryslow).
        live_preset: x264 preset of a live run's recording (``--cam ... --output``): it shares the
            cores with tracking and rendering and falls behind first (its frames are dropped),
            so it takes the cheapest: ultrafast costs about half the CPU of veryfast per 1280x720
            frame (12 against 22-26 ms on a busy 2-core machine) for files about 4x larger.
    """

    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"
    live_preset: str = "ultrafast"

    def __post_init__(self) -> None:
        if not CRF_RANGE[0] <= self.crf <= CRF_RANGE[1]:
            raise ValueError(f"encoder.crf must be in {CRF_RANGE[0]}..{CRF_RANGE[1]}, got {self.crf}")


def output_kind(path: str | Path, *, overwrite: bool = True) -> str:
    """Check an output path before any work is done and say what it will hold.

    Args:
        path: The output file.
        overwrite: Whether an existing file may be replaced (the CLI refuses it without --overwrite).

    Returns:
        ``"video"`` or ``"image"``.

    Raises:
        ConfigError: When the extension is not a supported one (the message lists them).
        InputError: When the folder does not exist (or is a file), the path is a folder, or the file
            exists and ``overwrite`` is False.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in WRITE_VIDEOS + WRITE_IMAGES:
        raise ConfigError(f"output {path}: unsupported extension '{p.suffix or '(none)'}'; use one of "
                          f"{', '.join(WRITE_VIDEOS)} (video) or {', '.join(WRITE_IMAGES)} (still image)")
    folder = p.parent if str(p.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} is a file, not a folder; choose another --output")
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist; create it first or choose another --output")
    if p.is_dir():
        raise InputError(f"output {path} is a folder; give a file name such as {p / 'out.mp4'}")
    if not overwrite and p.exists():
        raise InputError(f"output {path} already exists; pass --overwrite to replace it or choose another name")
    return "video" if suffix in WRITE_VIDEOS else "image"


def partial_files(path: str | Path) -> list[Path]:
    """The temporary files that sinks writing ``path`` have left behind.

    Only a process killed outright (SIGKILL, a lost node) leaves one: ``abort()`` deletes it
    otherwise. A batch render calls this for the jobs of a worker that died.
    """
    p = Path(path)
    return sorted(p.parent.glob(f".{glob.escape(p.name)}.*{_PARTIAL}{glob.escape(p.suffix)}"))


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) rounded up to even numbers, as yuv420p needs."""
    return size[0] + size[0] % 2, size[1] + size[1] % 2


class FileSink(SinkContext):
    """Writes frames to a video (H.264, yuv420p, the driving audio) or one still image.

    Videos: the frame rate is ``fps`` (the driving's, exact), timestamps come from the frame
    count, and every written frame is kept. An odd width or height is padded by one pixel on the
    right / bottom (the last column / row repeated) because yuv420p needs even dimensions; padding
    keeps every source pixel, where cropping would lose one.

    Attributes:
        kind: ``"video"`` or ``"image"``.
        frames_written: Frames accepted by ``write``.
        written_size: (width, height) in the file: ``size`` rounded up to even for videos.

    Args:
        path: Output file (``output_kind`` must accept it).
        fps: Frame rate of videos: a Fraction keeps it exact (``VideoSource.rate``), a float is fine.
        size: (width, height) of the frames that ``write`` will get (videos only).
        encoder: Video encoder settings.
        audio: The driving's audio stream to copy (or re-encode to AAC), None for none.
        overwrite: Whether an existing file at ``path`` may be replaced when the file is finished.

    Raises:
        ConfigError / InputError: From ``output_kind``.
        SinkError: When the output file cannot be created or the encoder cannot be opened.
    """

    def __init__(self, path: str | Path, *, fps: Fraction | float = 25, size: tuple[int, int] | None = None,
                 encoder: EncoderConfig | None = None, audio: AudioInfo | None = None,
                 overwrite: bool = True) -> None:
        self.path = Path(path)
        self.kind = output_kind(self.path, overwrite=overwrite)
        self.frames_written = 0
        # What the file will hold: videos are padded to even dimensions, stills keep the exact size.
        self.written_size = even_size(size) if self.kind == "video" and size is not None else size
        self._tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}{_PARTIAL}{self.path.suffix}"
        self._done = False
        self._still: np.ndarray | None = None
        self._video: _VideoWriter | None = None
        if self.kind == "video":
            if size is None:
                raise SinkError(f"output {path}: a video needs the frame size; the caller passed none")
            rate = Fraction(fps).limit_denominator(1_000_000)  # 30000/1001 survives a float round trip
            self._video = _VideoWriter(self._tmp, self.path.suffix.lower(), rate, size,
                                       encoder or EncoderConfig(), audio)

    def write(self, frame: Frame) -> None:
        """Encode one RGB frame (videos) or keep it (stills: only one frame is allowed).

        Raises:
            SinkError: On a second frame for a still image, a frame of the wrong size, or an encoder error.
        """
        if self._done:
            raise SinkError(f"output {self.path} is already closed; no more frames can be written")
        if self._video is None:
            if self._still is not None:
                raise SinkError(f"output {self.path} is a still image and takes one frame; "
                                f"use {', '.join(WRITE_VIDEOS)} for a video")
            self._still = frame.image
        else:
            self._video.write(frame.image)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and rename it into place (once).

        Raises:
            SinkError: When nothing was written or the file cannot be finished (no file is left).
        """
        if self._done:
            return
        self._done = True
        try:
            if self._video is not None:
                if self.frames_written == 0:
                    raise SinkError(f"output {self.path}: no frame was rendered, so no video was written")
                self._video.close()
            elif self._still is None:
                raise SinkError(f"output {self.path}: no frame was rendered, so no image was written")
            else:
                _write_image(self._tmp, self._still)
            os.replace(self._tmp, self.path)
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Stop writing and delete the temporary file: nothing appears at the output path."""
        if self._done:
            return
        self._done = True
        self._discard()

    def _discard(self) -> None:
        if self._video is not None:
            self._video.abort()
        self._tmp.unlink(missing_ok=True)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    """Encode ``rgb`` by the path's extension and write it (the caller renames it into place)."""
    import cv2

    ok, data = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise SinkError(f"OpenCV could not encode a {path.suffix} image of shape {rgb.shape}")
    try:
        with open(path, "xb") as fh:
            fh.write(data.tobytes())
    except OSError as exc:
        raise write_error(exc, path.parent) from None


def write_error(exc: BaseException, folder: Path) -> SinkError:
    """The one-line error for a failed write, with the fix its cause calls for (PyAV's errors are
    OSErrors too)."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return SinkError(f"writing the output in {folder} failed: {reason}; free some disk space or "
                         "write somewhere else")
    return SinkError(f"cannot write {folder}: {reason}; check that the folder exists and is writable")


class _VideoWriter:
    """PyAV container with one H.264 stream and, optionally, the driving audio."""

    def __init__(self, tmp: Path, suffix: str, rate: Fraction, size: tuple[int, int],
                 encoder: EncoderConfig, audio: AudioInfo | None) -> None:
        import av

        self._size = size
        self._pad = (size[0] % 2, size[1] % 2)
        options = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}
        self._folder = tmp.parent
        try:
            self._out = av.open(str(tmp), "w", format=CONTAINERS[suffix], options=options)
        except (av.FFmpegError, OSError) as exc:
            raise write_error(exc, tmp.parent) from None
        try:
            stream = self._out.add_stream(encoder.codec, rate=rate,
                                          options={"crf": str(encoder.crf), "preset": encoder.preset})
            if not isinstance(stream, av.VideoStream):
                raise ValueError(f"{encoder.codec} is not a video codec")
            self._stream = stream
            self._stream.width, self._stream.height = even_size(size)
            self._stream.pix_fmt = "yuv420p"
            self._stream.thread_type = "AUTO"
            self._audio = _AudioTrack(audio, self._out, suffix) if audio is not None else None
        except (av.FFmpegError, ValueError) as exc:
            self._out.close()
            tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot open the {encoder.codec} encoder ({exc}); check encoder.codec/preset") from None
        self._time_base = 1 / rate
        self._count = 0

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB frame (timestamp = frames so far) and mux the audio that falls before its end."""
        import av

        h, w = rgb.shape[:2]
        if (w, h) != self._size or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise SinkError(f"frame {self._count} is {w}x{h} (shape {rgb.shape}); the video was opened "
                            f"for {self._size[0]}x{self._size[1]} RGB")
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[1]), (0, self._pad[0]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        vf.pts, vf.time_base = self._count, self._time_base
        self._count += 1
        self._mux(self._stream.encode(vf))
        if self._audio is not None:
            self._audio.pump(float(self._count * self._time_base))

    def close(self) -> None:
        """Flush the encoder, the rest of the audio, and finish the container.

        Raises:
            SinkError: When the file cannot be finished (a full disk shows up here, at the last flush).
        """
        import av

        self._mux(self._stream.encode(None))
        try:
            if self._audio is not None:
                self._audio.pump(float(self._count * self._time_base), final=True)
                self._audio.close()
            self._out.close()
        except (av.FFmpegError, OSError) as exc:
            raise write_error(exc, self._folder) from None

    def abort(self) -> None:
        """Release everything without finishing the file (the caller deletes it)."""
        if self._audio is not None:
            self._audio.close()
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway; the first error matters
            pass

    def _mux(self, packets: Any) -> None:
        import av

        try:
            self._out.mux(packets)
        except (av.FFmpegError, OSError) as exc:
            raise write_error(exc, self._folder) from None


class _AudioTrack:
    """Copies the driving's audio packets into the output (or re-encodes them to AAC), trimmed to
    the video's length and interleaved with it as the video advances."""

    def __init__(self, info: AudioInfo, out: Any, suffix: str) -> None:
        import av

        self._in = av.open(info.path)
        self._src = self._in.streams[info.stream_index]
        self._copy = info.codec in _COPYABLE.get(suffix, set())
        if self._copy:
            self._dst = out.add_stream_from_template(self._src)
        else:
            dst = out.add_stream("aac", rate=info.sample_rate or 44100)
            if not isinstance(dst, av.AudioStream) or not isinstance(self._src, av.AudioStream):
                raise SinkError(f"cannot re-encode the audio of {info.path} as AAC")
            self._dst = dst
            # Some decoders report an unordered layout ("1 channels") that the AAC encoder refuses.
            channels = info.channels or self._src.layout.nb_channels
            self._dst.layout = {1: "mono", 2: "stereo"}.get(channels, self._src.layout.name)
            self._resampler = av.AudioResampler(format="fltp", layout=self._dst.layout.name,
                                                rate=self._dst.rate)
        self._out = out
        # Keep the original sync: the audio is shifted by where the video stream started.
        video = self._in.streams.video[0] if self._in.streams.video else None
        self._offset = 0.0
        if video is not None and video.start_time and video.time_base is not None:
            self._offset = float(video.start_time * video.time_base)
        self._packets = self._in.demux(self._src)
        self._pending: Any = None
        self._ended = False

    def pump(self, until_s: float, final: bool = False) -> None:
        """Mux audio that starts before ``until_s`` seconds of video; ``final`` also flushes an encoder."""
        while not self._ended:
            pkt = self._pending or next(self._packets, None)
            self._pending = None
            if pkt is None:
                self._ended = True
                break
            if pkt.dts is None or pkt.pts is None:
                continue  # demuxer flush packet
            start = float(pkt.pts * pkt.time_base) - self._offset
            if start >= until_s:
                self._pending = pkt
                break
            self._write(pkt)
        if final:
            self._ended = True
            if not self._copy:
                self._out.mux(self._dst.encode(None))

    def _write(self, pkt: Any) -> None:
        if self._copy:
            shift = round(self._offset / pkt.time_base)
            pkt.pts, pkt.dts = pkt.pts - shift, pkt.dts - shift
            pkt.stream = self._dst
            self._out.mux(pkt)
            return
        for frame in pkt.decode():
            frame.pts = None  # let the encoder count samples from zero
            for resampled in self._resampler.resample(frame):
                self._out.mux(self._dst.encode(resampled))

    def close(self) -> None:
        """Close the driving file opened for its audio."""
        self._in.close()
