"""``facepaint-live batch``: render every job of a job file, skip what is up to date, record it all.

This is the CLI layer of batch rendering: progress bars and the per-job lines go to stderr here.
Exit codes: 0 every job done or skipped, 1 some jobs failed (the rest were rendered), 2 a bad job
file or option (nothing rendered), 130 stopped by Ctrl-C (run the same command again to go on).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError, InputError
from facepaint.runtime.batch.jobs import Job, read_jobs
from facepaint.runtime.batch.local import CORES_PER_WORKER, Frames, LocalExecutor, Started, default_workers
from facepaint.runtime.batch.manifest import InputHasher, JobResult, Manifest

EXIT_FAILED = 1

EPILOG = """job file columns (CSV header, or keys of each JSON line):
  source, driving    portrait image and driving video or image (relative to the job file's folder)
  output             output name inside --out (default <source>__<driving>.mp4, .png for an image)
  any setting        of the main command, by flag name (face_index, reference, crf, reenactor,
                     device, ...) or config key (engine.transformer.expression; JSON lines may nest)

exit codes: 0 all done or up to date, 1 some jobs failed (see manifest.jsonl), 2 bad job file, 130 Ctrl-C
examples:
  facepaint-live batch jobs.csv --out renders/                  this machine, all cores
  facepaint-live batch jobs.jsonl --out renders/ --ray auto     a Ray cluster (local if none runs)
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``facepaint-live batch``."""
    p = argparse.ArgumentParser(
        prog="facepaint-live batch", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render many portrait x driving pairs; finished jobs are skipped on a re-run.")
    p.add_argument("jobs", help="job file: .csv with a header row, or .jsonl with one object per line")
    p.add_argument("--out", required=True, help="output folder (created); holds the renders and manifest.jsonl")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="run on a Ray cluster: 'auto' (the one on this machine, "
                   "else a new local one) or an address such as ray://head:10001; needs the [ray] extra")
    p.add_argument("--workers", type=int, help=f"worker processes or Ray actors (default: one per "
                   f"{CORES_PER_WORKER} cores here; on Ray one per GPU, else per {CORES_PER_WORKER} CPUs)")
    p.add_argument("--force", action="store_true", help="render every job again, even when up to date")
    p.add_argument("--config", help="TOML file with settings for every job (the job file's columns win)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str]) -> int:
    """Run a batch; returns the exit code (FacepaintError propagates for the CLI's one-line error)."""
    return run_batch(build_parser().parse_args(list(argv)))


def run_batch(args: argparse.Namespace, listener: Callable[[Any], None] | None = None) -> int:
    """Run the batch ``args`` describe (``build_parser``'s); ``listener`` also gets every executor
    event (the ui's batch screen). Returns the exit code; FacepaintError propagates."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    from facepaint.runtime.config import load_toml

    out = Path(args.out)
    jobs = read_jobs(args.jobs, out, load_toml(args.config) if args.config else None)
    _make_folders(out, jobs)
    manifest = Manifest(out)
    hasher = InputHasher()
    digests = {job.id: hasher.job(job) for job in jobs}
    todo = [job for job in jobs if args.force or not manifest.up_to_date(job, digests[job.id])]
    rendering = {job.id for job in todo}
    for job in jobs:
        if job.id not in rendering:
            manifest.record(manifest.skipped(job), digests[job.id], job.line)
    run = _Run(jobs, todo, args.quiet)
    try:
        with closing(_executor(args).run(todo)) as events:
            for event in events:
                run.show(event)
                if listener is not None:
                    listener(event)
                if isinstance(event, JobResult):
                    job = run.by_id[event.id]
                    manifest.record(event, digests[job.id], job.line)
    except KeyboardInterrupt:
        run.close()
        print(f"facepaint-live batch: stopped with {run.finished} of {len(todo)} jobs finished; run the same "
              "command again to render the rest", file=sys.stderr)
        raise
    run.close()
    print(run.summary(manifest.path), file=sys.stderr)
    return EXIT_FAILED if run.failed else 0


def _executor(args: argparse.Namespace) -> Any:
    if args.ray:
        from facepaint.runtime.batch.ray_cluster import RayExecutor

        return RayExecutor(args.ray, args.workers)
    return LocalExecutor(args.workers or default_workers())


def _make_folders(out: Path, jobs: Sequence[Job]) -> None:
    try:
        for folder in {out} | {Path(str(job.config.output)).parent for job in jobs}:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {exc.filename}: {exc.strerror}") from None


class _Run:
    """Progress bars over jobs and frames, the failed-job lines and the closing summary."""

    def __init__(self, jobs: Sequence[Job], todo: Sequence[Job], quiet: bool) -> None:
        from tqdm import tqdm

        self.by_id = {job.id: job for job in jobs}
        self.skipped, self.finished, self.failed, self.frames = len(jobs) - len(todo), 0, 0, 0
        self.total, self.start = len(jobs), time.perf_counter()
        self._write = tqdm.write
        self._jobs = tqdm(total=len(todo), unit="job", desc="jobs", file=sys.stderr, disable=quiet,
                          dynamic_ncols=True, leave=False, position=0)
        self._frames = tqdm(unit="frame", desc="frames", file=sys.stderr, disable=quiet, dynamic_ncols=True,
                            leave=False, position=1)

    def show(self, event: Any) -> None:
        """Move the bars for one executor event."""
        if isinstance(event, Frames):
            self._frames.update(event.count)
            self.frames += event.count
        elif isinstance(event, Started):
            self._jobs.set_postfix_str(event.job_id, refresh=True)
        elif isinstance(event, JobResult):
            self.finished += 1
            self._jobs.update(1)
            if event.status == "failed":
                self.failed += 1
                line = self.by_id[event.id].line
                self._write(f"facepaint-live batch: {event.id} (line {line}) failed: {event.error}", file=sys.stderr)

    def close(self) -> None:
        """Take the bars off the terminal."""
        self._frames.close()
        self._jobs.close()

    def summary(self, manifest: Path) -> str:
        """One line: what was done, how fast, where the manifest is."""
        wall = time.perf_counter() - self.start
        done = self.finished - self.failed
        rate = f"{60 * done / wall:.1f} jobs/min, {self.frames / wall:.1f} frames/s" if wall > 0 else ""
        return (f"facepaint-live batch: {done} done, {self.skipped} up to date, {self.failed} failed of "
                f"{self.total} jobs in {wall:.1f} s ({rate}); manifest {manifest}")
