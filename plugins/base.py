"""The three plugin kinds (trackers, sources, sinks): their protocols and the lazy registry.

Plugins are found through the entry-point groups ``facepaint.trackers``, ``facepaint.sources`` and
``facepaint.sinks``; the built-ins are registered in our own pyproject.toml the same way. Only the
selected plugin's module is imported, so listing plugins never imports mediapipe or torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facepaint.engine.errors import ConfigError
from facepaint.engine.track import FaceTrack

GROUPS = ("facepaint.trackers", "facepaint.sources", "facepaint.sinks")


@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame travelling through the pipeline.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        index: 0-based frame number in its stream.
        pts: Presentation time in seconds from the start of the stream.
        captured_at: ``time.perf_counter()`` when the frame was captured; latency is measured from it.
    """

    image: np.ndarray
    index: int
    pts: float
    captured_at: float


@runtime_checkable
class Tracker(Protocol):
    """Finds faces in RGB frames.

    ``track`` returns every face found, largest first (``FaceTrack.area``), an empty list when there
    is none. ``timestamp_ms`` is given for streams (video mode: temporal tracking and smoothing) and
    None for unrelated stills (image mode). ``reset()`` forgets temporal state (a new stream).
    """

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[FaceTrack]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """Yields frames. ``fps`` is the nominal rate, ``size`` is (width, height), ``frame_count`` is
    known for files and None for cameras, ``live`` is True for cameras (and files paced as cameras).
    Iterating yields ``Frame`` objects until the stream ends. ``close()`` runs once; later calls
    do nothing."""

    fps: float
    size: tuple[int, int]
    frame_count: int | None
    live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class LiveSource(Source, Protocol):
    """A camera, or a file paced like one. ``dropped`` counts the frames it overwrote because the
    reader was not ready (a camera never waits)."""

    dropped: int


@runtime_checkable
class FileSource(Source, Protocol):
    """A driving file (video or still). ``rate`` is the exact frame rate the output is written at;
    ``audio`` is the audio stream the file sink copies (None: no audio)."""

    rate: Fraction
    audio: Any


@runtime_checkable
class Sink(Protocol):
    """Consumes output frames. ``write`` takes an RGB frame; ``close()`` finalises (for files: the
    atomic rename into place) and runs once. ``abort()`` releases everything and leaves no output."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class StreamTimestamps:
    """Millisecond timestamps for a tracker's video mode, from frame times in seconds.

    Kept strictly increasing: MediaPipe refuses a timestamp that does not grow, and two frames can
    round to the same millisecond (clips above 1000 fps, variable frame rates, looped files).
    """

    def __init__(self) -> None:
        self._last = -1

    def __call__(self, seconds: float) -> int:
        """The timestamp of a frame shown ``seconds`` after the stream start."""
        self._last = max(int(round(seconds * 1000.0)), self._last + 1)
        return self._last


class SinkContext:
    """``with sink:`` closes the sink when the block succeeds and aborts it when the block raises,
    so an error never leaves a half-written output behind."""

    def __enter__(self):  # noqa: ANN204 - returns the subclass instance
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()  # type: ignore[attr-defined]
        else:
            self.abort()  # type: ignore[attr-defined]


def load_plugin(group: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``.

    Raises:
        ConfigError: When no plugin has that name (the message lists the known ones).
    """
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        close = difflib.get_close_matches(name, found, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        kind = group.rsplit(".", 1)[-1]
        raise ConfigError(f"unknown {kind[:-1]} '{name}'; known: {', '.join(sorted(found))}.{hint}")
    return found[name].load()
