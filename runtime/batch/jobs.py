"""The job file of ``facepaint-live batch``: CSV or JSON lines, one render per row.

Columns: ``source``, ``driving``, an optional ``output`` name (relative to ``--out``) and any
per-job setting of the main command, either by its flag name (``face_index``, ``reference``,
``tracker``, ``crf``) or by its dotted config key (``engine.transformer.expression``). Every row is
built into an ``AppConfig`` by the same strict machinery as the main command before anything is
rendered, so a typo or a bad value stops the batch with the file's line number.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError, InputError
from facepaint.plugins.media import READ_IMAGES, READ_VIDEOS, WRITE_IMAGES, WRITE_VIDEOS
from facepaint.runtime.config import AppConfig, build_app_config
from facepaint.runtime.flags import FLAGS

# Settings written as text on the command line, read from a cell by the flag's own parser.
TEXT_PARSERS: dict[str, Callable[[str], Any]] = {f.key: f.parse for f in FLAGS if f.key and f.parse}
# AppConfig keys that mean nothing for one file render inside a batch.
NOT_PER_JOB = {"cam", "loop", "preview", "vcam", "virtual_camera", "stats_json", "progress", "expressions"}
# Columns may be named as the flags are (``expression_scale``): each names its flag's config keys.
# Switches that turn a setting off (``--no-vcam``) are no column: ``vcam=false`` says it plainly.
ALIASES = {f.dest: ",".join(f.keys) for f in FLAGS
           if f.key and f.switch is not False and f.key.split(".")[0] not in NOT_PER_JOB and ",".join(f.keys) != f.dest}
PATH_KEYS = ("source", "driving", "output")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Job:
    """One render of the batch.

    Attributes:
        id: The output name relative to ``--out`` (unique in the batch; the manifest's key).
        line: Line of the job file the job comes from.
        config: The render's full configuration (absolute source, driving and output paths).
    """

    id: str
    line: int
    config: AppConfig


def read_jobs(path: str | Path, out_dir: str | Path, base: Mapping[str, Any] | None = None) -> list[Job]:
    """Read and validate every job of a job file.

    Relative ``source`` and ``driving`` paths are read from the job file's folder.

    Args:
        path: A ``.csv`` file (header row) or a ``.jsonl`` file (one object per line).
        out_dir: The batch's output folder.
        base: Settings shared by every job (``--config``), under the job's own.

    Returns:
        The jobs in file order.

    Raises:
        InputError: When the job file cannot be read.
        ConfigError: Unknown column, bad value, duplicate output or no job, with the line number.
    """
    path = Path(path)
    rows = _rows(path)
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            job = _job(row, line, path.resolve().parent, Path(out_dir), base or {})
        except FacepaintError as exc:
            raise ConfigError(f"{path}:{line}: {exc}") from None
        if job.id in seen:
            raise ConfigError(f"{path}:{line}: output {job.id} is also the output of line {seen[job.id]}; "
                              "give one of them another 'output' name")
        seen[job.id] = line
        jobs.append(job)
    if not jobs:
        raise ConfigError(f"{path}: no job in the file; give a header row and one row per render")
    return jobs


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"{path}: unsupported extension '{path.suffix}' for a job file; use .csv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"job file {path} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"job file {path} cannot be read as UTF-8 text: {exc}") from None
    return list(_csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text))


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip() for h in header]
    for name in names:  # refused at the header, where the column is, rather than on every row
        try:
            _setting_paths(name)
        except ConfigError as exc:
            raise ConfigError(f"{path}:1: {exc}") from None
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise ConfigError(f"{path}:{reader.line_num}: {len(row)} cells, the header has {len(names)}")
        yield reader.line_num, {n: c.strip() for n, c in zip(names, row, strict=True) if c.strip()}


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{line}: not valid JSON ({exc.msg}); one object per line") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{line}: a line must be a JSON object, got {type(row).__name__}")
        yield line, row


def _job(row: Mapping[str, Any], line: int, folder: Path, out_dir: Path, base: Mapping[str, Any]) -> Job:
    layer: dict[str, Any] = {}
    for key, value in _flatten(row):
        for keys in _setting_paths(key):
            typed = _coerce(keys, value) if isinstance(value, str) and keys[0] not in PATH_KEYS else value
            _put(layer, keys, typed)
    for key in ("source", "driving"):
        if not layer.get(key):
            raise ConfigError(f"no '{key}'; every job needs a source portrait and a driving file")
        layer[key] = str(folder / str(layer[key]))  # an absolute path stays as it is
    name = _output_name(layer)
    layer["output"] = str((out_dir / name).resolve())
    # The manifest decides what is rendered again (changed inputs, --force): that replaces the output.
    return Job(id=name, line=line, config=build_app_config(base, layer, {"progress": False, "overwrite": True}))


def _flatten(row: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested JSON objects become dotted keys, so CSV and JSON lines share one validation."""
    for key, value in row.items():
        name = f"{prefix}{str(key).strip().replace('-', '_')}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _setting_paths(name: str) -> list[tuple[str, ...]]:
    """The config keys a column sets (an alias may set several), checked against ``AppConfig``.

    Raises:
        ConfigError: Unknown or not per-job, with the closest known column.
    """
    name = name.strip().replace("-", "_")
    return [_setting_path(name, tuple(key.split("."))) for key in ALIASES.get(name, name).split(",")]


def _setting_path(name: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    if keys[0] in NOT_PER_JOB:
        raise ConfigError(f"column '{name}' is not a per-job setting of a batch render")
    cls: Any = AppConfig
    for depth, key in enumerate(keys):
        fields = _fields(cls)
        if key not in fields:
            prefix = ".".join(keys[:depth])
            known = [f"{prefix}.{k}" if prefix else k for k in fields if depth or k not in NOT_PER_JOB]
            close = difflib.get_close_matches(name, known + ([] if depth else list(ALIASES)), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; see 'facepaint-live batch --help'"
            raise ConfigError(f"unknown column '{name}'{hint}")
        cls = fields[key]
    if _fields(cls):
        first = next(iter(_fields(cls)))
        raise ConfigError(f"column '{name}' is a section; name one of its keys, such as '{name}.{first}'")
    return keys


def _fields(cls: Any) -> dict[str, Any]:
    """A config section's fields with their resolved types ({} for a value type such as int)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return {}
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(keys: tuple[str, ...], text: str) -> Any:
    """A CSV cell as the type its config field declares (int, float, bool or str)."""
    cls: Any = AppConfig
    for key in keys:
        cls = _fields(cls)[key]
    kinds = [t for t in typing.get_args(cls) if t is not type(None)] or [cls]
    kind = kinds[0]
    name = ".".join(keys)
    if name in TEXT_PARSERS:
        return TEXT_PARSERS[name](text)
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        return kind(text) if kind in (int, float) else text
    except ValueError:
        raise ConfigError(f"'{name}' must be {kind.__name__}, got '{text}'") from None


def _put(layer: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        layer = layer.setdefault(key, {})
    if keys[-1] in layer:
        raise ConfigError(f"'{'.'.join(keys)}' is given twice")
    layer[keys[-1]] = value


def _output_name(layer: Mapping[str, Any]) -> str:
    """The job's output, relative to ``--out``: given, or ``<source>__<driving>.mp4`` (``.png``
    for a still driving image on a still source)."""
    source, driving = Path(layer["source"]), Path(layer["driving"])
    name = layer.get("output")
    if not name:
        still = driving.suffix.lower() in READ_IMAGES and source.suffix.lower() not in READ_VIDEOS
        suffix = ".png" if still else ".mp4"
        return f"{source.stem}__{driving.stem}{suffix}"
    rel = PurePosixPath(str(name).replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        raise ConfigError(f"output '{name}' must be a file name inside --out (no absolute path, no '..')")
    if rel.suffix.lower() not in WRITE_VIDEOS + WRITE_IMAGES:
        raise ConfigError(f"output '{name}': unsupported extension; use one of "
                          f"{', '.join(WRITE_VIDEOS + WRITE_IMAGES)}")
    return str(rel)
