"""Soak test: a long live run from a looping file camera with recording on, sampled every few seconds.

Runs ``facepaint-live --source P --cam CLIP --loop --no-vcam --output rec.mp4 --duration N*60
--stats-json stats.json --quiet`` in a child process (what a user runs) and samples the child's
resident memory, thread count and open file descriptors from ``/proc/<pid>`` every ``--interval``
seconds. At the end it reads the per-second latency series of ``--stats-json`` and prints one row per
minute and a verdict against four goals:

* RSS growth < 50 MB between the end of the first minute (models loaded, warm) and the last minute;
* p95 latency of the last 5 minutes within 10% of the first 5 (each window: the median of its
  minutes' p95, each the median of that minute's per-second p95, so one second of contention from
  another process does not decide it; the stats' per-minute rows cover the whole run, where the
  per-second series keeps only the last hour);
* threads and file descriptors flat: their maximum over the last 5 minutes is not above that of
  the first 5 after warm-up (the looping clip's decoder threads come and go each time it reopens);
* no frame dropped (only meaningful on an idle machine: report drops with the machine's load).

Usage: ``python bench/soak.py [--minutes 30] [--source P] [--cam CLIP] [--out DIR] [--json F]``.
Exit code 0 when every goal is met, 1 otherwise. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
RSS_GROWTH_MB = 50.0
LATENCY_DRIFT = 0.10
WARMUP_S = 60.0
WINDOW_MIN = 5
_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the soak run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", default=str(MEDIA / "portraits" / "obama.jpg"), help="portrait image")
    p.add_argument("--cam", default=str(MEDIA / "driving" / "vr_2.mp4"), help="clip played as a looping camera")
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between /proc samples")
    p.add_argument("--size", default="1280x720", help="output (and recording) size WxH")
    p.add_argument("--portrait-size", help="resize the portrait to WxH first (a 4000x3000 photo from any "
                   "portrait), to see what a large one costs per stage")
    p.add_argument("--out", help="folder for rec.mp4, stats.json and samples.json (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep rec.mp4 (it is deleted after it is checked)")
    p.add_argument("--json", help="also write the verdict and the per-minute rows to this file")
    return p.parse_args(argv)


def proc_sample(pid: int) -> dict[str, float] | None:
    """RSS (MB), thread count, open fds and CPU seconds of process ``pid``, and the host's CPU
    counters (``host_steal``, ``host_total`` in ticks); None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = float(fields["VmRSS"].split()[0]) if "VmRSS" in fields else float("nan")
    # utime and stime are fields 14 and 15; the command name before them may hold spaces.
    utime, stime = (int(x) for x in stat.rsplit(")", 1)[1].split()[11:13])
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal ... (ticks).
    # Steal is the time the hypervisor gave this VM's CPUs to someone else: a slower host, not us.
    host = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return {"rss_mb": rss_kb / 1024.0, "threads": int(fields["Threads"]), "fds": fds,
            "cpu_s": (utime + stime) / _TICKS, "host_steal": host[7], "host_total": sum(host),
            "thread_cpu_s": thread_cpu(pid)}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s live threads by OS name (the stages name theirs ``fp-<stage>``;
    MediaPipe's are ``drishti``, x264's and the rest ``python``)."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            utime, stime = (int(x) for x in (task / "stat").read_text().rsplit(")", 1)[1].split()[11:13])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # the thread ended between the listing and the read
        found[name] = found.get(name, 0.0) + (utime + stime) / _TICKS
    return found


def run_child(args: argparse.Namespace, out: Path) -> tuple[list[dict[str, float]], dict[str, Any], str]:
    """Run facepaint-live for ``args.minutes`` and sample it; returns (samples, stats, stderr).

    Raises:
        RuntimeError: When facepaint-live exits with an error (its stderr is in the message).
    """
    seconds = args.minutes * 60.0
    cmd = [sys.executable, "-c", "import sys; from facepaint.runtime.cli import main; sys.exit(main())",
           "--source", args.source, "--cam", args.cam, "--loop", "--no-vcam", "--output", str(out / "rec.mp4"),
           "--size", args.size, "--duration", str(seconds), "--stats-json", str(out / "stats.json"), "--quiet"]
    samples: list[dict[str, float]] = []
    with open(out / "stderr.txt", "w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        started = time.monotonic()
        while proc.poll() is None:
            sample = proc_sample(proc.pid)
            if sample is not None:
                samples.append({"t": time.monotonic() - started, **sample, "load1": os.getloadavg()[0]})
            try:
                proc.wait(timeout=args.interval)
            except subprocess.TimeoutExpired:
                pass
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"facepaint-live exited with {proc.returncode}: {stderr.strip()[-1500:]}")
    return samples, json.loads((out / "stats.json").read_text()), stderr


def per_minute(samples: list[dict[str, float]], stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per minute: frames, p50/p95 latency (medians of the seconds), the last /proc sample,
    the child's CPU per frame and the host's steal over the minute.

    CPU per frame tells whether the run itself got more expensive (a leak of work) or only slower
    (another process, or the hypervisor's steal, took the cores)."""
    # The whole run's per-minute summary (the per-second series keeps only the last hour).
    by_minute = {int(r["minute"]): r for r in stats["latency_ms_by_minute"]}
    rows, prev = [], samples[0] if samples else {}
    for m in range(max(by_minute, default=-1) + 1):
        row = by_minute.get(m)
        procs = [s for s in samples if s["t"] < (m + 1) * 60 + 5]  # the child starts a few s before its clock
        last = procs[-1] if procs else {}
        cpu_ms, steal = _per_frame_cpu(prev, last, row), _steal(prev, last)
        prev = last or prev
        rows.append({
            "minute": m + 1,
            "frames": int(row["n"]) if row else 0,
            "p50_ms": row["p50"] if row else None,
            "p95_ms": row["p95"] if row else None,
            "rss_mb": last.get("rss_mb"), "threads": last.get("threads"), "fds": last.get("fds"),
            "load1": last.get("load1"), "cpu_ms_per_frame": cpu_ms, "steal_pct": steal,
        })
    return rows


def _per_frame_cpu(a: dict[str, Any], b: dict[str, Any], row: dict[str, Any] | None) -> float | None:
    """The child's CPU ms per delivered frame between samples ``a`` and ``b``."""
    if "cpu_s" not in a or "cpu_s" not in b or not row or not row["n"]:
        return None
    return (b["cpu_s"] - a["cpu_s"]) * 1000.0 / float(row["n"])


def _steal(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The host's steal between samples ``a`` and ``b``, in % of the VM's CPU time."""
    if "host_total" not in a or "host_total" not in b or b["host_total"] <= a["host_total"]:
        return None
    return 100.0 * (b["host_steal"] - a["host_steal"]) / (b["host_total"] - a["host_total"])


def verdict(samples: list[dict[str, float]], stats: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The four goals measured on one run of ``seconds``.

    /proc samples count from the first minute to ``seconds`` after the child started: the child
    needs a few seconds to start its clock, so that window ends before its shutdown (threads
    exiting) begins.
    """
    warm = [s for s in samples if WARMUP_S <= s["t"] <= seconds] or samples
    minutes = [r for r in stats["latency_ms_by_minute"] if r["n"] > 0]
    end = max([int(r["minute"]) for r in minutes], default=0) + 1
    first = [r["p95"] for r in minutes if r["minute"] < WINDOW_MIN]
    last = [r["p95"] for r in minutes if r["minute"] >= end - WINDOW_MIN]
    p95_first = float(np.median(first)) if first else None
    p95_last = float(np.median(last)) if last else None
    drift = None if not p95_first or p95_last is None else (p95_last - p95_first) / p95_first
    growth = warm[-1]["rss_mb"] - warm[0]["rss_mb"] if warm else None
    # Decoder threads come and go each time the looping clip is reopened, so "flat" means the
    # range of the last window does not rise above that of the first one (no leak), not one value.
    early = [s for s in warm if s["t"] < WARMUP_S + WINDOW_MIN * 60] or warm
    late = [s for s in warm if s["t"] >= seconds - WINDOW_MIN * 60] or warm
    threads = [min(int(s["threads"]) for s in warm), max(int(s["threads"]) for s in warm)] if warm else []
    fds = [min(int(s["fds"]) for s in warm), max(int(s["fds"]) for s in warm)] if warm else []
    # Bounded buffers (the recorder's backlog of up to 25 frames) fill once, when the machine gets
    # busy; a leak keeps growing. The median of the last window against the first tells them apart.
    steady = (float(np.median([s["rss_mb"] for s in late])) - float(np.median([s["rss_mb"] for s in early]))
              if warm else None)
    flat = bool(warm) and all(max(int(s[k]) for s in late) <= max(int(s[k]) for s in early)
                              for k in ("threads", "fds"))
    return {
        "rss_start_mb": warm[0]["rss_mb"] if warm else None, "rss_end_mb": warm[-1]["rss_mb"] if warm else None,
        "rss_max_mb": max(s["rss_mb"] for s in warm) if warm else None,
        "rss_growth_mb": growth, "rss_ok": growth is not None and growth < RSS_GROWTH_MB,
        "rss_steady_growth_mb": steady,
        "p95_first_ms": p95_first, "p95_last_ms": p95_last, "p95_drift": drift,
        "latency_ok": drift is not None and abs(drift) <= LATENCY_DRIFT,
        "threads": threads, "fds": fds, "flat_ok": flat,
        "dropped": stats["dropped"], "drops": stats["drops"], "frames_in": stats["frames_in"],
        "frames_out": stats["frames_out"], "camera_fps": stats["camera"]["fps"], "fps": stats["fps"],
        "drops_ok": stats["dropped"] == 0,
        "load1_mean": float(np.mean([s["load1"] for s in samples])) if samples else None,
    }


def recording_frames(path: Path) -> int:
    """Video packets in the recording (one per frame) without decoding it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for pkt in container.demux(stream) if pkt.size)


def thread_lines(samples: list[dict[str, Any]], stats: dict[str, Any]) -> list[str]:
    """CPU ms per delivered frame by thread name, from the end of warm-up to the last sample
    (threads that ended before the last sample, such as a looping clip's decoders, are left out)."""
    warm = [s for s in samples if s["t"] >= WARMUP_S and "thread_cpu_s" in s]
    if len(warm) < 2 or not stats.get("fps"):
        return []
    a, b = warm[0], warm[-1]
    frames = stats["fps"] * (b["t"] - a["t"])
    cost = {k: (v - a["thread_cpu_s"].get(k, 0.0)) * 1000.0 / frames for k, v in b["thread_cpu_s"].items()}
    top = sorted(cost.items(), key=lambda kv: -kv[1])
    return ["CPU ms per frame by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in top if v >= 0.05)]


def stage_lines(stats: dict[str, Any]) -> list[str]:
    """Per-stage p50/p95 of the run (the portrait's size decides infer's cost) and what live gave up."""
    lines = [f"{'stage':<10} {'p50 ms':>8} {'p95 ms':>8}"]
    lines += [f"{name:<10} {row['p50']:>8.1f} {row['p95']:>8.1f}" for name, row in stats.get("stages", {}).items()]
    degraded = stats.get("degraded", {})
    if degraded.get("steps"):
        steps = degraded["steps"]
        lines.append(f"degraded ({len(steps)} changes, {sum(1 for d in steps if d.get('up'))} back up): " + ", ".join(
            f"{'up to' if d.get('up') else 'down to'} {d['step']} at {d['at_s']} s" for d in steps[:12])
            + (", ..." if len(steps) > 12 else ""))
    return lines


def report(rows: list[dict[str, Any]], v: dict[str, Any], recorded: int | None, elapsed_s: float) -> str:
    """The human-readable result: the per-minute table, then the verdict."""
    mark = {True: "ok  ", False: "MISS"}
    lines = [f"{'min':>4} {'frames':>7} {'p50 ms':>8} {'p95 ms':>8} {'RSS MB':>8} {'thr':>4} {'fds':>4} "
             f"{'load':>5} {'cpu/fr':>6} {'steal':>5}"]
    for r in rows:
        lines.append(f"{r['minute']:>4} {r['frames']:>7} {_f(r['p50_ms'])} {_f(r['p95_ms'])} {_f(r['rss_mb'])} "
                     f"{_i(r['threads'])} {_i(r['fds'])} {_f(r['load1'], 5, 2)} {_f(r.get('cpu_ms_per_frame'), 6)} "
                     f"{_f(r.get('steal_pct'), 5)}")
    drift = "n/a" if v["p95_drift"] is None else f"{v['p95_drift'] * 100:+.1f}%"
    lines += [
        "",
        f"{mark[v['rss_ok']]} RSS {_f(v['rss_start_mb'], 0)} -> {_f(v['rss_end_mb'], 0)} MB after warm-up "
        f"(growth {_f(v['rss_growth_mb'], 0)} MB, max {_f(v['rss_max_mb'], 0)}; goal < {RSS_GROWTH_MB:g} MB); "
        f"median of the last {WINDOW_MIN} min vs the first {WINDOW_MIN}: {_f(v['rss_steady_growth_mb'], 0)} MB",
        f"{mark[v['latency_ok']]} p95 latency last {WINDOW_MIN} min {_f(v['p95_last_ms'], 0)} ms vs first "
        f"{WINDOW_MIN} min {_f(v['p95_first_ms'], 0)} ms: {drift} (goal within {LATENCY_DRIFT * 100:g}%)",
        f"{mark[v['flat_ok']]} threads {v['threads'][0]}..{v['threads'][-1]}, fds {v['fds'][0]}..{v['fds'][-1]} after "
        f"warm-up (goal: the last {WINDOW_MIN} min never above the first {WINDOW_MIN})",
        f"{mark[v['drops_ok']]} dropped {v['dropped']} of {v['frames_in']} captured ({v['drops'] or 'none'}); "
        f"delivered {v['fps']:.2f} of {v['camera_fps']:.2f} fps; mean load {_f(v['load1_mean'], 0, 2)} "
        "(drops only count against the goal on an idle machine)",
        f"recording: {recorded if recorded is not None else 'n/a'} frames over {elapsed_s:.0f} s",
    ]
    return "\n".join(lines)


def _f(value: float | None, width: int = 8, digits: int = 1) -> str:
    return ("n/a" if value is None else f"{value:.{digits}f}").rjust(width)


def _i(value: int | None) -> str:
    return ("-" if value is None else str(value)).rjust(4)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when every goal is met."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="facepaint-soak-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if args.portrait_size:
            from render_stages import resized_portrait

            args.source = resized_portrait(args.source, args.portrait_size, out)
        samples, stats, _ = run_child(args, out)
        (out / "samples.json").write_text(json.dumps(samples))
        rows, v = per_minute(samples, stats), verdict(samples, stats, args.minutes * 60.0)
        rec = out / "rec.mp4"
        recorded = recording_frames(rec) if rec.exists() else None
        if not args.keep:
            rec.unlink(missing_ok=True)
        print("\n".join(stage_lines(stats) + thread_lines(samples, stats)))
        print(report(rows, v, recorded, float(stats["elapsed_s"])))
        if args.json:
            Path(args.json).write_text(json.dumps({"verdict": v, "minutes": rows, "recorded": recorded}, indent=2))
    return 0 if v["rss_ok"] and v["latency_ok"] and v["flat_ok"] and v["drops_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
