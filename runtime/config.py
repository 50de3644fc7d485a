"""AppConfig: every component's frozen config, composed once from the CLI and an optional TOML file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from facepaint.engine.config import build_config
from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.faces import check_faces
from facepaint.engine.reenactment import EngineConfig
from facepaint.engine.source_video import SourceVideoConfig
from facepaint.plugins.sinks.file import EncoderConfig
from facepaint.plugins.sinks.vcam import VirtualCamConfig
from facepaint.plugins.trackers.config import TrackerConfig

TRACK_WORKERS = (1, 16)  # trackers a file render may run side by side


@dataclass(frozen=True)
class RuntimeConfig:
    """How the threaded pipelines are joined.

    Attributes:
        offline_queue: Capacity of each queue of a file render (blocking: no frame is lost). Enough
            to overlap the stages; more only holds more frames in memory.
        live_queue: Capacity of each queue of a live run (the oldest frame is dropped when full). One
            waiting frame: a second slot would only add a frame period of latency.
        track_workers: Trackers a file render runs side by side (each on its own thread, frame i
            to tracker i mod N; ``runtime.parallel_track``). 1 on small machines: the tracker is
            not the bottleneck of a 2-core render. On many cores it lifts the bound one tracker
            puts on the frame rate; each adds a landmarker's memory.
    """

    offline_queue: int = 4
    live_queue: int = 1
    track_workers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.offline_queue <= 64:
            raise ValueError(f"offline_queue must be in [1, 64], got {self.offline_queue}")
        if not 1 <= self.live_queue <= 8:
            raise ValueError(f"live_queue must be in [1, 8], got {self.live_queue}")
        if not TRACK_WORKERS[0] <= self.track_workers <= TRACK_WORKERS[1]:
            raise ValueError(f"track_workers must be in [{TRACK_WORKERS[0]}, {TRACK_WORKERS[1]}], got "
                             f"{self.track_workers}")


@dataclass(frozen=True)
class AppConfig:
    """One run of facepaint-live.

    Exactly one of ``driving`` (offline render) and ``cam`` (live) is set, or neither for an edit
    of the still (``engine.expression`` or a contact sheet of ``expressions``). ``size`` (WxH) is the
    output frame a file render fits the portrait inside (None: the portrait's own size); live, the
    frame is the virtual camera's (``frame_size``).
    """

    source: str
    driving: str | None = None
    cam: str | None = None
    output: str | None = None
    overwrite: bool = False
    face_index: int | None = None
    faces: str | tuple[int, ...] | None = None
    loop: bool = False
    duration: float | None = None
    progress: bool = True
    preview: bool = False
    vcam: bool = True
    stats_json: str | None = None
    expressions: tuple[str, ...] = ()
    background: str | None = None
    size: tuple[int, int] | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    virtual_camera: VirtualCamConfig = field(default_factory=VirtualCamConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    source_video: SourceVideoConfig = field(default_factory=SourceVideoConfig)

    def __post_init__(self) -> None:
        if (self.driving is None) == (self.cam is None) and not self.still:
            raise ValueError("give exactly one of --driving (render a file) and --cam (live), or edit the "
                             "still with --expression/--au/--pose/--expressions and --output IMAGE")
        if self.expressions and not self.still:
            raise ValueError("--expressions makes a contact sheet of the still; drop --driving/--cam")
        if self.still and self.output is None:
            raise ValueError("an edited still needs --output IMAGE (for example out.png)")
        if self.face_index is not None and self.face_index < 0:
            raise ValueError(f"--face-index must be >= 0, got {self.face_index}")
        if self.faces is not None:
            _check_faces(self.faces, self.face_index, bool(self.expressions))
        if self.duration is not None and not (isinstance(self.duration, (int, float)) and 0 < self.duration < math.inf):
            raise ValueError(f"--duration must be a number of seconds > 0, got {self.duration}")
        if self.driving is not None and self.output is None:
            raise ValueError("--driving needs --output FILE (for example out.mp4 or out.png)")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 16):
            raise ValueError(f"size must be (width, height) >= 16, got {self.size}")

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """The (width, height) of the output frame the portrait is prepared to fill: live, the
        virtual camera's (and its recording's); a file render, ``size`` (None: the portrait's own)."""
        if self.live:
            return (int(self.virtual_camera.size[0]), int(self.virtual_camera.size[1]))
        return self.size

    @property
    def still(self) -> bool:
        """True for edits of the portrait alone (no ``--driving``, no ``--cam``)."""
        edit = self.engine.expression.active or bool(self.expressions) or self.background is not None
        return self.driving is None and self.cam is None and edit

    @property
    def live(self) -> bool:
        """True for ``--cam`` runs."""
        return self.cam is not None


def _check_faces(faces: str | tuple[int, ...], face_index: int | None, sheet: bool) -> None:
    """``faces`` is well formed and not given with what picks or shows one face only."""
    check_faces(faces)
    if face_index is not None:
        raise ValueError("give --faces or --face-index, not both (--face-index N is --faces N's single-face path)")
    if sheet:
        raise ValueError("--expressions makes a contact sheet of one face; use --face-index instead of --faces")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a mapping for ``build_app_config``."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"config file not found: {path}; check the path given to --config") from None
    except IsADirectoryError:
        raise InputError(f"config file {path} is a folder; give --config a .toml file") from None
    except OSError as exc:
        raise InputError(f"config file {path} cannot be read ({exc.strerror}); check its permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def build_app_config(*layers: Mapping[str, Any]) -> AppConfig:
    """Merge mappings (``merge_layers``) and build ``AppConfig``."""
    return build_config(AppConfig, merge_layers(*layers))


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """One mapping of ``layers``: later layers win, nested tables merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer)
    return merged


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value
