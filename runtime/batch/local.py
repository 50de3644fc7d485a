"""The local executor: worker processes on this machine, each keeping its sessions (one per portrait) warm.

Each worker is a spawned process joined to the coordinator by two one-way pipes (no shared queue
whose lock a killed process could take with it). The coordinator waits on the pipes and on the
process sentinels together, so a worker that dies is seen at once: its job goes back to the front
of the queue once, and fails with the exit code if its second worker dies too.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from facepaint.plugins.sinks.file import partial_files
from facepaint.runtime.batch.jobs import Job
from facepaint.runtime.batch.manifest import JobResult

# One render keeps about this many cores busy (its decode, track, render and encode threads
# overlap): on the 2-core machine bench/batch.py measured 2 workers at 0.74x the jobs/min of 1.
CORES_PER_WORKER = 2
MAX_ATTEMPTS = 2  # a job whose worker died is retried once: a second death is the job's own doing
STOP_GRACE_S = 15.0  # time a stopped worker gets to abort its render and delete its temporary file


@dataclass(frozen=True)
class Started:
    """A worker picked up a job."""

    job_id: str


@dataclass(frozen=True)
class Frames:
    """A worker wrote ``count`` more frames of a job."""

    job_id: str
    count: int


Event = Started | Frames | JobResult


def machine_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes for this machine: one per ``CORES_PER_WORKER`` cores."""
    return max(1, machine_cores() // CORES_PER_WORKER)


@dataclass
class _Worker:
    process: Any
    inbox: Connection  # coordinator -> worker: (job id, config, attempt) or None to stop
    outbox: Connection  # worker -> coordinator: events
    job: Job | None = None
    attempt: int = 0
    source: str | None = None


class LocalExecutor:
    """Runs jobs in ``workers`` processes on this machine.

    Args:
        workers: Worker processes (at most one per job).
        threads: OpenCV threads per worker (None: the cores shared out between the workers).
    """

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = max(1, workers)
        self.threads = threads or max(1, machine_cores() // self.workers)

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        """Render ``jobs``, yielding events as they happen; every job ends in one ``JobResult``.

        Closing the generator (or Ctrl-C while it runs) stops the workers: each aborts its render,
        so no output file is left half written, and the jobs in flight get no result.
        """
        ctx = multiprocessing.get_context("spawn")  # fork would copy the threads of torch/MediaPipe
        pending = list(jobs)
        pool = [self._spawn(ctx) for _ in range(min(self.workers, len(pending)))]
        try:
            while pending or any(w.job is not None for w in pool):
                for worker in pool:
                    if worker.job is None and pending:
                        busy = {w.job.config.source for w in pool if w.job is not None}
                        self._assign(worker, next_job(pending, worker.source, busy), 1)
                ready = wait([w.outbox for w in pool] + [w.process.sentinel for w in pool])
                for worker in list(pool):
                    if worker.outbox in ready or worker.process.sentinel in ready:
                        yield from self._serve(worker, pool, pending, ctx)
        finally:
            _stop(pool)

    def _spawn(self, ctx: Any) -> _Worker:
        task_r, task_w = ctx.Pipe(duplex=False)
        event_r, event_w = ctx.Pipe(duplex=False)
        process = ctx.Process(target=worker_main, args=(task_r, event_w, self.threads),
                              name="facepaint-batch-worker", daemon=True)
        process.start()
        task_r.close()
        event_w.close()
        return _Worker(process, task_w, event_r)

    def _assign(self, worker: _Worker, job: Job, attempt: int) -> None:
        worker.job, worker.attempt, worker.source = job, attempt, job.config.source
        try:
            worker.inbox.send((job.id, job.config, attempt))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker is dead: its sentinel is ready and _serve retries the job

    def _serve(self, worker: _Worker, pool: list[_Worker], pending: list[Job], ctx: Any) -> Iterator[Event]:
        """Pass on what ``worker`` sent; if it died, replace it and retry its job once."""
        try:
            while worker.outbox.poll():
                event = worker.outbox.recv()
                if isinstance(event, JobResult):
                    worker.job = None
                yield event
            if worker.process.is_alive():
                return
        except (EOFError, OSError):
            pass  # the pipe closed: the process is gone
        worker.process.join()
        pool.remove(worker)
        worker.inbox.close()
        worker.outbox.close()
        job = worker.job
        if job is None:
            if pending:
                pool.append(self._spawn(ctx))
            return
        for tmp in partial_files(str(job.config.output)):
            tmp.unlink(missing_ok=True)  # a killed process cannot delete its own
        if worker.attempt < MAX_ATTEMPTS:
            pool.append(self._spawn(ctx))
            self._assign(pool[-1], job, worker.attempt + 1)
        else:
            yield JobResult(id=job.id, status="failed", output=str(job.config.output), attempts=worker.attempt,
                            error=f"the worker process died twice (exit code {worker.process.exitcode})")


def next_job(pending: list[Job], last_source: str | None, busy_sources: set[str]) -> Job:
    """Take the next job for an idle worker out of ``pending``: one of the worker's last source
    (its portrait is ready), else one of a source no other worker is on, else the first waiting."""
    for wanted in (lambda j: j.config.source == last_source, lambda j: j.config.source not in busy_sources):
        for i, job in enumerate(pending):
            if wanted(job):
                return pending.pop(i)
    return pending.pop(0)


def _stop(pool: list[_Worker]) -> None:
    """Stop every worker: idle ones by a message, busy ones by SIGTERM (their render aborts and
    deletes its temporary file); a worker that has not exited after the grace time is killed."""
    for worker in pool:
        try:
            worker.inbox.send(None)
        except OSError:
            pass
        if worker.job is not None and worker.process.is_alive():
            os.kill(worker.process.pid, signal.SIGTERM)
    for worker in pool:
        worker.process.join(STOP_GRACE_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        if worker.job is not None:
            for tmp in partial_files(str(worker.job.config.output)):
                tmp.unlink(missing_ok=True)
        worker.inbox.close()
        worker.outbox.close()


def worker_main(tasks: Connection, events: Connection, threads: int) -> None:
    """A worker process: render the jobs it is sent until told to stop (None) or SIGTERM.

    Ctrl-C at a terminal reaches every process of the group; workers ignore it and let the
    coordinator decide, which stops them with SIGTERM, turned here into KeyboardInterrupt so that
    the render unwinds and deletes its temporary file.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    import cv2

    cv2.setNumThreads(threads)  # OpenCV would start a thread per core in every worker
    from facepaint.runtime.batch.render import WarmSessions, run_job

    warm = WarmSessions()
    try:
        while (task := tasks.recv()) is not None:
            job_id, config, attempt = task
            events.send(Started(job_id))
            events.send(run_job(warm, job_id, config, attempt, functools.partial(_send_frames, events, job_id)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # stopped, or the coordinator is gone
    finally:
        warm.close()


def _send_frames(events: Connection, job_id: str, count: int) -> None:
    events.send(Frames(job_id, count))


def _interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interrupt; the unwinding must not be cut short
    raise KeyboardInterrupt
