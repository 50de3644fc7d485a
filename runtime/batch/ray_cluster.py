"""The Ray executor: the batch's jobs on Ray actors, each keeping its sessions (one per portrait) warm.

``--ray auto`` joins the cluster started on this machine by ``ray start --head`` (or the one named by
``RAY_ADDRESS``) and otherwise starts a one-machine cluster for the run; ``--ray ADDRESS`` joins that
cluster (``ray://head:10001`` through Ray Client, or ``head:6379``). Actors read and write media by
path, so every node must see the job file's paths and ``--out`` at the same place (a shared file
system). A worker that dies is Ray's to restart: each actor may restart once and retries its job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from facepaint.engine.errors import BackendUnavailable
from facepaint.plugins.sinks.file import partial_files
from facepaint.runtime.batch.jobs import Job
from facepaint.runtime.batch.local import CORES_PER_WORKER, Event, Frames, Started, next_job
from facepaint.runtime.batch.manifest import JobResult

KILL_WAIT_S = 10.0  # how long a stopped run waits for its killed actors to be gone


class RenderActor:
    """Warm sessions per actor (wrapped by ``ray.remote`` when the executor starts)."""

    def __init__(self) -> None:
        import ray

        from facepaint.runtime.batch.render import WarmSessions

        self._warm = WarmSessions()
        # Restarted after its process died: the first job it runs is the one Ray retries.
        self._retrying = ray.get_runtime_context().was_current_actor_reconstructed

    def render(self, job_id: str, config: Any) -> JobResult:
        """Render one job (see ``render.run_job``)."""
        from facepaint.runtime.batch.render import run_job

        attempt = 2 if self._retrying else 1
        self._retrying = False
        return run_job(self._warm, job_id, config, attempt)


def connect(address: str) -> Any:
    """Import Ray and join (or, for ``auto`` with no cluster running, start) a cluster.

    Raises:
        BackendUnavailable: When Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--ray needs Ray: pip install 'facepaint-live[ray]'") from None
    try:
        ray.init(address=None if address == "auto" else address, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise BackendUnavailable(f"cannot reach the Ray cluster at {address}: {exc}".splitlines()[0]) from None
    return ray


class RayExecutor:
    """Runs jobs on Ray actors, one job in flight per actor.

    Args:
        address: ``auto`` or a cluster address (see the module docstring).
        workers: Actors (None: one per GPU of the cluster, else one per ``CORES_PER_WORKER`` CPUs).
    """

    def __init__(self, address: str, workers: int | None = None) -> None:
        self.address, self.workers = address, workers

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        """Render ``jobs``, yielding results as they finish (frames come with each result)."""
        ray = connect(self.address)
        actors: list[Any] = []
        inflight: dict[Any, tuple[Any, Job]] = {}
        try:
            actor_class, count = self._actor_class(ray, len(jobs))
            pending = list(jobs)
            actors = [actor_class.remote() for _ in range(count)]
            last: dict[int, str] = {}
            while pending or inflight:
                for actor in actors:
                    if pending and all(a is not actor for a, _ in inflight.values()):
                        busy = {j.config.source for _, j in inflight.values()}
                        job = next_job(pending, last.get(id(actor)), busy)
                        last[id(actor)] = job.config.source
                        inflight[actor.render.remote(job.id, job.config)] = (actor, job)
                        yield Started(job.id)
                done, _ = ray.wait(list(inflight), num_returns=1)
                actor, job = inflight.pop(done[0])
                result = self._result(ray, done[0], job)
                if result.status == "done":
                    yield Frames(job.id, result.frames)
                elif result.error and result.error.startswith("the Ray actor died"):
                    actors[actors.index(actor)] = actor_class.remote()
                yield result
        finally:
            _stop(ray, actors, inflight)

    def _actor_class(self, ray: Any, jobs: int) -> tuple[Any, int]:
        """The actor class with its resources, and how many actors to start."""
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        count = self.workers or (gpus if gpus else max(1, int(cpus // CORES_PER_WORKER)))
        count = max(1, min(count, jobs))
        options: dict[str, Any] = {"max_restarts": 1, "max_task_retries": 1}
        if gpus:
            options["num_gpus"] = max(gpus // count, 1) if gpus >= count else gpus / count
        options["num_cpus"] = cpus / count  # the actors share the cluster's CPUs out evenly
        return ray.remote(**options)(RenderActor), count

    def _result(self, ray: Any, ref: Any, job: Job) -> JobResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return JobResult(id=job.id, status="failed", output=str(job.config.output), attempts=2,
                             error=f"the Ray actor died twice ({first})")
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return JobResult(id=job.id, status="failed", output=str(job.config.output), error=first)


def _stop(ray: Any, actors: list[Any], inflight: dict[Any, tuple[Any, Job]]) -> None:
    """Kill the actors, delete the temporary files of the renders they were in (the driver sees
    the output folder like every node), and leave the cluster."""
    for actor in actors:
        ray.kill(actor, no_restart=True)
    if inflight:
        ray.wait(list(inflight), num_returns=len(inflight), timeout=KILL_WAIT_S)
    for _, job in inflight.values():
        for tmp in partial_files(str(job.config.output)):
            tmp.unlink(missing_ok=True)
    ray.shutdown()
