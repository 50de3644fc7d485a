"""The batch screen: a job file rendered by the batch command's own ``run_batch``, each job's
status from ``manifest.jsonl`` (what a re-run skips) and from the events of the run in progress.
Resume is running it again: finished, up-to-date jobs are skipped, as on the command line."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError
from facepaint.runtime.ui.files import Files


class BatchRun:
    """One batch at a time, over ``files`` (finished outputs are served by id).

    Args:
        files: How the page gets the outputs.
    """

    def __init__(self, files: Files) -> None:
        self.files = files
        self.jobs_path = ""
        self.out = ""
        self.state = "idle"  # idle, running, done, failed
        self.error = ""
        self.running_jobs: set[str] = set()
        self._thread: threading.Thread | None = None

    def start(self, jobs: str, out: str) -> None:
        """Run (or resume) the batch of job file ``jobs`` into folder ``out`` on a thread.

        Raises:
            FacepaintError: A batch is running, or the job file is refused (the CLI's message).
        """
        from facepaint.runtime.batch.command import build_parser
        from facepaint.runtime.batch.jobs import read_jobs

        if self._thread is not None and self._thread.is_alive():
            raise ConfigError("a batch is running; wait for it to finish")
        if not jobs or not out:
            raise ConfigError("give a job file (.csv or .jsonl) and an output folder")
        read_jobs(jobs, out)  # checked now: a bad job file is an error on the page, not a failed run
        args = build_parser().parse_args([jobs, "--out", out, "--quiet"])
        self.jobs_path, self.out, self.state, self.error = jobs, out, "running", ""
        self.running_jobs = set()
        self._thread = threading.Thread(target=self._run, args=(args,), name="ui-batch", daemon=True)
        self._thread.start()

    def _run(self, args: Any) -> None:
        from facepaint.runtime.batch.command import run_batch

        try:
            code = run_batch(args, self._event)
            self.state = "done" if code == 0 else "failed"
            self.error = "" if code == 0 else "some jobs failed; see their lines"
        except FacepaintError as exc:
            self.state, self.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: one line on the page, the server keeps serving
            self.state, self.error = "failed", f"unexpected {type(exc).__name__}: {exc}"

    def _event(self, event: Any) -> None:
        from facepaint.runtime.batch.local import Started
        from facepaint.runtime.batch.manifest import JobResult

        if isinstance(event, Started):
            self.running_jobs.add(event.job_id)
        elif isinstance(event, JobResult):
            self.running_jobs.discard(event.id)

    def status(self) -> dict[str, Any]:
        """The run's state and one row per job: status, frames, fps, error, output (an id)."""
        out: dict[str, Any] = {"state": self.state, "error": self.error, "jobs": []}
        if not self.jobs_path:
            return out
        from facepaint.runtime.batch.jobs import read_jobs
        from facepaint.runtime.batch.manifest import Manifest

        entries = Manifest(self.out).entries
        for job in read_jobs(self.jobs_path, self.out):
            entry = entries.get(job.id, {})
            status = "running" if job.id in self.running_jobs else entry.get("status", "pending")
            output = Path(str(job.config.output))
            row = {"id": job.id, "line": job.line, "status": status, "frames": entry.get("frames", 0),
                   "fps": entry.get("fps", 0.0), "error": entry.get("error", "")}
            if status in ("done", "skipped") and output.is_file():
                row["file"] = self.files.serve(output)
            out["jobs"].append(row)
        return out
