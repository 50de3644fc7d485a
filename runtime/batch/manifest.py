"""``<out>/manifest.jsonl``: one line per job (the latest outcome), and what makes a job up to date.

A job is up to date when its output file exists and the manifest holds a finished entry with the
same hash. The hash covers the *content* of the source and driving files (SHA-256), the job's whole
resolved configuration (defaults included, so a changed default re-renders) and the facepaint-live
version. Content rather than size + mtime + path: copying a media folder to another disk or node
(``cp``, ``rsync`` without ``-t``, a fresh checkout) changes every mtime and path and would re-render
everything, while an edited file that keeps its size and mtime second would be skipped wrongly.
Reading the inputs costs one sequential read per distinct file per run (about 1 s per GB), small
beside rendering it; files are hashed once per run however many jobs share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from facepaint.runtime.batch.jobs import Job

MANIFEST = "manifest.jsonl"
FINISHED = ("done", "skipped")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class JobResult:
    """What became of one job (a manifest line).

    Attributes:
        id: The job's id (its output name).
        status: ``done``, ``failed`` or ``skipped``.
        output: The output file.
        frames: Frames written.
        fps: Frames rendered per second of the job's wall time (tracker, engine and encoder).
        wall_s: The job's wall time in seconds, from its worker picking it up.
        error: The one-line error of a failed job.
        attempts: Times the job was started (2 when its worker died and it was retried).
        frames_without_face: Driving frames in which no face was found (the portrait held or rested).
    """

    id: str
    status: str
    output: str
    frames: int = 0
    fps: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    attempts: int = 1
    frames_without_face: int = 0


class InputHasher:
    """SHA-256 of file contents, each file read once per run."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def file(self, path: str) -> str:
        """The file's hash, or ``missing`` when it cannot be read (the render reports why)."""
        try:
            st = os.stat(path)
            key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
            if key not in self._known:
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                self._known[key] = digest.hexdigest()
            return self._known[key]
        except OSError:
            return "missing"

    def job(self, job: Job) -> str:
        """The hash of a job's inputs and settings (output path excluded: the id already names it)."""
        settings = dataclasses.asdict(job.config)
        for key in ("source", "driving", "output", "progress"):
            settings.pop(key, None)
        blob = json.dumps({"source": self.file(job.config.source), "driving": self.file(str(job.config.driving)),
                           "settings": settings, "version": _version()}, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


class Manifest:
    """The manifest of an output folder: read at start, rewritten atomically after every job.

    Entries of jobs that are not in the current job file are kept as they are.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / MANIFEST
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            for raw in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(raw)
                except json.JSONDecodeError:
                    continue  # only a hand-edited file has one; the job simply renders again
                if isinstance(entry, dict) and "id" in entry:
                    self.entries[str(entry["id"])] = entry

    def up_to_date(self, job: Job, digest: str) -> bool:
        """Whether ``job`` finished before with these inputs and its output is still there."""
        entry = self.entries.get(job.id)
        return (entry is not None and entry.get("status") in FINISHED and entry.get("hash") == digest
                and Path(str(job.config.output)).is_file())

    def skipped(self, job: Job) -> JobResult:
        """The earlier outcome of an up-to-date job, as skipped."""
        entry = self.entries[job.id]
        return JobResult(id=job.id, status="skipped", output=str(job.config.output), frames=entry.get("frames", 0),
                         fps=entry.get("fps", 0.0), wall_s=0.0, attempts=0)

    def record(self, result: JobResult, digest: str, line: int) -> None:
        """Store one outcome and rewrite the file (temporary file + rename: never half written)."""
        entry = {**dataclasses.asdict(result), "line": line, "hash": digest,
                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        entry["fps"], entry["wall_s"] = round(result.fps, 3), round(result.wall_s, 3)
        self.entries[result.id] = entry
        self._write(self.entries.values())

    def _write(self, entries: Iterable[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries), encoding="utf-8")
        os.replace(tmp, self.path)


def _version() -> str:
    try:
        return metadata.version("facepaint-live")
    except metadata.PackageNotFoundError:
        return "unknown"
