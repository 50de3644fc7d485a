"""Batch rendering throughput: one command per file vs ``batch`` (local, 1 and 2 workers) vs ``--ray auto``.

Twelve short jobs (3 portraits x 4 driving clips cut to ``--frames`` frames) rendered four ways in
the same run, each the way a user runs it (a child process, timed from outside):

* ``loop``: ``facepaint-live --source S --driving D --output O`` once per job, one after another;
* ``batch -w1`` / ``batch -w2``: ``facepaint-live batch jobs.csv --out DIR --workers N``;
* ``batch --ray auto``: the same on a one-machine Ray cluster started for the run.

Also the cost of starting Ray (``ray.init`` and a first actor call, in a child process), the
machine's load and its busiest other processes (the machine may be shared), and a cluster
estimate on paper from the per-worker figures. Usage: ``python bench/batch.py [--frames 20]
[--rounds 2] [--media DIR] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
PORTRAITS = ("obama.jpg", "lp_s12.jpg", "lp_s42.jpg")
CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d10.mp4", "lp_d18.mp4")
CLI = [sys.executable, "-c", "import sys; from facepaint.runtime.cli import main; sys.exit(main())"]
RAY_START = """
import time; t0 = time.perf_counter()
import ray; t1 = time.perf_counter()
ray.init(include_dashboard=False, log_to_driver=False, logging_level="WARNING"); t2 = time.perf_counter()
@ray.remote
class A:
    def ping(self): return 1
ray.get(A.remote().ping.remote()); t3 = time.perf_counter()
ray.shutdown(); t4 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f} {t4 - t3:.2f}")
"""


def cut(src: Path, dst: Path, frames: int) -> None:
    """The first ``frames`` frames of ``src`` (video only)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate, options={"preset": "ultrafast", "crf": "18"})
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            if i == frames:
                break
            frame.pts, frame.time_base = i, 1 / vin.average_rate
            out.mux(vout.encode(frame.reformat(format="yuv420p")))
        out.mux(vout.encode(None))


def make_jobs(media: Path, work: Path, frames: int) -> Path:
    """The 12-job CSV and its short clips in ``work``."""
    rows = []
    for clip in CLIPS:
        cut(media / "driving" / clip, work / clip, frames)
    for portrait in PORTRAITS:
        for clip in CLIPS:
            rows.append((str(media / "portraits" / portrait), str(work / clip)))
    path = work / "jobs.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("source", "driving"), *rows])
    return path


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one child process; raises on an unexpected exit code."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[3:])} exited with {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return wall


def loop(jobs: Path, out: Path) -> float:
    """One facepaint-live command per job, one after another."""
    rows = list(csv.DictReader(open(jobs)))
    out.mkdir()
    start = time.perf_counter()
    for i, row in enumerate(rows):
        timed(CLI + ["--source", row["source"], "--driving", row["driving"], "--output", str(out / f"{i}.mp4"),
                     "--quiet"])
    return time.perf_counter() - start


def busiest_others(count: int = 6) -> str:
    """The processes using the most CPU right now (ps: average over each one's life), this one excluded."""
    ps = subprocess.run(["ps", "-eo", "pcpu=,pid=,args=", "--sort=-pcpu"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in ps.splitlines() if len(line.split(None, 2)) == 3]
    rows = [(float(c), a[:60]) for c, pid, a in rows if int(pid) != os.getpid() and float(c) >= 1.0]
    return "; ".join(f"{c:.0f}% {a}" for c, a in rows[:count]) or "nothing above 1%"


def main(argv: list[str] | None = None) -> int:
    """Run every mode (``--rounds`` times, alternating the order against drifting load) and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=20, help="frames per driving clip (default 20)")
    p.add_argument("--rounds", type=int, default=1, help="times each mode runs; odd rounds go in reverse order")
    p.add_argument("--media", default=str(MEDIA), help="the shared media folder")
    p.add_argument("--skip-ray", action="store_true", help="leave out the Ray runs")
    args = p.parse_args(argv)
    jobs_n = len(PORTRAITS) * len(CLIPS)
    total_frames = jobs_n * args.frames
    print(f"cores {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f}; busiest: {busiest_others()}")
    walls: dict[str, list[float]] = {}
    loads: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = make_jobs(Path(args.media), work, args.frames)
        batch = CLI + ["batch", str(jobs), "--quiet", "--out"]
        modes = {"loop (one command per job)": lambda out: loop(jobs, out),
                 "batch --workers 1": lambda out: timed(batch + [str(out), "--workers", "1"]),
                 "batch --workers 2": lambda out: timed(batch + [str(out), "--workers", "2"])}
        if not args.skip_ray:
            modes["batch --ray auto"] = lambda out: timed(batch + [str(out), "--ray", "auto"])
        for r in range(args.rounds):
            for k, (name, run) in enumerate(modes.items() if r % 2 == 0 else reversed(modes.items())):
                loads.setdefault(name, []).append(os.getloadavg()[0])
                walls.setdefault(name, []).append(run(work / f"r{r}m{k}"))
        ray_start = None if args.skip_ray else subprocess.run(
            [sys.executable, "-c", RAY_START], capture_output=True, text=True).stdout.split()
    print(f"{jobs_n} jobs, {total_frames} frames ({args.frames} per job), {args.rounds} round(s); "
          "figures from the mean wall")
    print(f"{'mode':28s} {'wall s (each round)':>22s} {'jobs/min':>9s} {'frames/s':>9s} {'load':>5s}")
    for name, values in walls.items():
        wall = sum(values) / len(values)
        each = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:28s} {each:>22s} {60 * jobs_n / wall:9.1f} {total_frames / wall:9.1f} "
              f"{sum(loads[name]) / len(loads[name]):5.1f}")
    if ray_start:
        imp, init, actor, down = ray_start
        print(f"ray: import {imp} s, ray.init (local cluster) {init} s, first actor call {actor} s, shutdown {down} s")
    print(f"after: load {os.getloadavg()[0]:.1f}; busiest: {busiest_others()}")
    print(on_paper({name: sum(v) / len(v) for name, v in walls.items()}, total_frames))
    return 0


def on_paper(walls: dict[str, float], frames: int, cores: int = 16, nodes: tuple[int, ...] = (1, 4, 16)) -> str:
    """A cluster estimate from this run's figures, stated as such: not a measurement.

    ``batch`` sizes itself at one worker per 2 cores, and one worker here had the 2 cores of this
    machine (shared with other agents), so a node of ``cores`` cores runs ``cores / 2`` workers at
    about the one-worker rate measured here; N nodes N times that, plus Ray's start once. The default
    engine is geometric and runs on the CPU, so a GPU node counts by its cores. It assumes that
    shared storage keeps up and that workers on separate cores do not slow each other.
    """
    one, ray = walls.get("batch --workers 1"), walls.get("batch --ray auto")
    if one is None:
        return ""
    rate, jobs = frames / one, len(PORTRAITS) * len(CLIPS)
    lines = [f"on paper (not measured): one worker renders {rate:.1f} frames/s ({60 * jobs / one:.1f} jobs/min) here"]
    if ray is not None:
        lines.append(f"  Ray's start and warm-up cost this run {ray - one:.1f} s more than the local executor "
                     "(once per run)")
    for n in nodes:
        workers = n * cores // 2
        lines.append(f"  {n:3d} nodes x {cores} cores: {workers:4d} workers, ~{workers * rate:,.0f} frames/s, "
                     f"~{workers * 60 * jobs / one:,.0f} jobs/min of {frames // jobs} frames")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
