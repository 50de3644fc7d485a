"""facepaint-live batch on real faces: bad jobs isolated, resume, Ctrl-C, a killed worker, Ray.

Driving clips are the first frames of the shared talking clips, so each job renders in about a second.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facepaint.plugins.sinks.file import even_size
from facepaint.runtime.batch.jobs import read_jobs
from facepaint.runtime.batch.local import Frames, LocalExecutor
from facepaint.runtime.batch.manifest import JobResult
from facepaint.runtime.cli import main

CLIP_FRAMES = 10
LONG_FRAMES = 60  # long enough to be caught in the middle


def cut_clip(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` (video only, re-encoded)."""
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
    return dst


@pytest.fixture(scope="module")
def media_dir(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two portraits, two 10-frame clips, one 60-frame clip, a corrupt clip and a faceless portrait."""
    pytest.importorskip("mediapipe")
    folder = tmp_path_factory.mktemp("batch_media")
    for name in ("obama.jpg", "lp_s12.jpg"):
        (folder / name).write_bytes((media / "portraits" / name).read_bytes())
    cut_clip(media / "driving" / "lp_d10.mp4", folder / "d10.mp4", CLIP_FRAMES)
    cut_clip(media / "driving" / "lp_d18.mp4", folder / "d18.mp4", CLIP_FRAMES)
    cut_clip(media / "driving" / "lp_d10.mp4", folder / "long.mp4", LONG_FRAMES)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    cv2.imwrite(str(folder / "wall.png"), np.full((240, 200, 3), 128, np.uint8))
    return folder


def _jobs(folder: Path, name: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("source,driving,output\n" + "".join(r + "\n" for r in rows))
    return path


def _manifest(out: Path) -> dict[str, dict]:
    return {e["id"]: e for e in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if ".partial" in p.name)


GOOD = ["obama.jpg,d10.mp4,a.mp4", "lp_s12.jpg,d10.mp4,b.mp4", "obama.jpg,d18.mp4,c.mp4"]
BAD = ["lp_s12.jpg,corrupt.mp4,corrupt.mp4", "missing.jpg,d10.mp4,missing.mp4", "wall.png,d18.mp4,noface.mp4"]


@pytest.mark.slow
def test_bad_jobs_fail_alone_and_a_rerun_skips_what_is_done(media_dir: Path, tmp_path: Path, capsys) -> None:
    jobs = _jobs(media_dir, "mixed.csv", [GOOD[0], BAD[0], GOOD[1], BAD[1], BAD[2], GOOD[2]])
    out = tmp_path / "renders"
    assert main(["batch", str(jobs), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    entries = _manifest(out)
    assert {k: e["status"] for k, e in entries.items()} == {
        "a.mp4": "done", "b.mp4": "done", "c.mp4": "done",
        "corrupt.mp4": "failed", "missing.mp4": "failed", "noface.mp4": "failed"}
    assert "cannot be read as a video" in entries["corrupt.mp4"]["error"]
    assert "not found" in entries["missing.mp4"]["error"] and "no face" in entries["noface.mp4"]["error"]
    assert entries["corrupt.mp4"]["line"] == 3 and "corrupt.mp4 (line 3) failed" in err
    for name, portrait in (("a.mp4", "obama.jpg"), ("b.mp4", "lp_s12.jpg"), ("c.mp4", "obama.jpg")):
        frames = _frames(out / name)
        height, width = cv2.imread(str(media_dir / portrait)).shape[:2]
        assert len(frames) == CLIP_FRAMES == entries[name]["frames"]
        assert frames[0].shape[1::-1] == even_size((width, height))
        assert entries[name]["fps"] > 0 and entries[name]["hash"].startswith("sha256:")
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "c.mp4", "manifest.jsonl"]
    assert "3 done, 0 up to date, 3 failed of 6 jobs" in err.strip().splitlines()[-1]

    stamps = {n: (out / n).stat().st_mtime_ns for n in ("a.mp4", "b.mp4", "c.mp4")}
    assert main(["batch", str(jobs), "--out", str(out), "--quiet"]) == 1  # the bad ones fail again
    assert "0 done, 3 up to date, 3 failed" in capsys.readouterr().err
    assert {n: (out / n).stat().st_mtime_ns for n in stamps} == stamps
    assert _manifest(out)["a.mp4"]["status"] == "skipped"
    assert main(["batch", str(jobs), "--out", str(out), "--quiet", "--force"]) == 1
    assert all((out / n).stat().st_mtime_ns != t for n, t in stamps.items())


@pytest.mark.slow
def test_a_warm_worker_renders_what_a_single_command_renders(media_dir: Path, tmp_path: Path) -> None:
    """c.mp4 comes after a.mp4 in the same worker (same portrait, engine rebuilt): no state leaks."""
    out = tmp_path / "renders"
    assert main(["batch", str(_jobs(media_dir, "good.csv", GOOD)), "--out", str(out), "--quiet"]) == 0
    single = tmp_path / "single.mp4"
    assert main(["--source", str(media_dir / "obama.jpg"), "--driving", str(media_dir / "d18.mp4"),
                 "--output", str(single), "--quiet"]) == 0
    batch, alone = _frames(out / "c.mp4"), _frames(single)
    assert len(batch) == len(alone) == CLIP_FRAMES
    assert max(np.abs(b.astype(int) - a.astype(int)).max() for b, a in zip(batch, alone, strict=True)) <= 2


@pytest.mark.slow
def test_a_killed_worker_has_its_job_retried_once(media_dir: Path, tmp_path: Path) -> None:
    jobs = read_jobs(_jobs(media_dir, "kill.csv", ["obama.jpg,long.mp4,long.mp4", GOOD[1]]), tmp_path)
    results, killed = {}, False
    for event in LocalExecutor(workers=1).run(jobs):
        if isinstance(event, Frames) and event.job_id == "long.mp4" and not killed:
            (worker,) = [p for p in multiprocessing.active_children() if p.name == "facepaint-batch-worker"]
            os.kill(worker.pid, signal.SIGKILL)
            killed = True
        if isinstance(event, JobResult):
            results[event.id] = event
    assert killed
    assert {k: (r.status, r.attempts, r.frames) for k, r in results.items()} == {
        "long.mp4": ("done", 2, LONG_FRAMES), "b.mp4": ("done", 1, CLIP_FRAMES)}
    assert len(_frames(tmp_path / "long.mp4")) == LONG_FRAMES and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_file_and_a_rerun_goes_on(media_dir: Path, tmp_path: Path) -> None:
    jobs = _jobs(media_dir, "stop.csv", [GOOD[0], "obama.jpg,long.mp4,long.mp4", GOOD[1]])
    out = tmp_path / "renders"
    command = [sys.executable, "-m", "facepaint.runtime.cli", "batch", str(jobs), "--out", str(out),
               "--workers", "1", "--quiet"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".long.mp4.") for p in out.glob(".*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: every process of the group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "manifest.jsonl"]
    assert main(["batch", str(jobs), "--out", str(out), "--quiet"]) == 0
    entries = _manifest(out)
    assert [entries[k]["status"] for k in ("a.mp4", "long.mp4", "b.mp4")] == ["skipped", "done", "done"]
    assert entries["long.mp4"]["frames"] == LONG_FRAMES and _leftovers(out) == []


@pytest.mark.slow
def test_ray_local_cluster_renders_and_isolates_a_bad_job(media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'facepaint-live[ray]')")
    jobs = _jobs(media_dir, "ray.csv", [GOOD[0], BAD[0], GOOD[1]])
    out = tmp_path / "renders"
    assert main(["batch", str(jobs), "--out", str(out), "--ray", "auto", "--workers", "1", "--quiet"]) == 1
    entries = _manifest(out)
    assert {k: e["status"] for k, e in entries.items()} == {"a.mp4": "done", "corrupt.mp4": "failed", "b.mp4": "done"}
    assert "cannot be read as a video" in entries["corrupt.mp4"]["error"]
    assert len(_frames(out / "a.mp4")) == len(_frames(out / "b.mp4")) == CLIP_FRAMES
