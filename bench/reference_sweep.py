"""``--reference auto`` against ``first`` on every shared driving clip, with both motion judges.

Each clip is rendered twice as cut (its first ``--max-frames`` frames) and twice cut to start
mid-word (on the most open mouth of its first two seconds), once per reference. The output is
judged the way ``facepaint-live eval`` judges it: MediaPipe blendshapes / pose, and dlib's 68
points read as geometry (the second judge). Rendering as ``facepaint-live --driving`` does
(offline tracker settings, centred smoothing), without encoding. About 10 minutes on 2 cores.

    python bench/reference_sweep.py                        # lp_s42 x driving/ + extra/
    python bench/reference_sweep.py --portrait obama --clips lp_d10,vr_2 --max-frames 90
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facepaint.engine.reference import choose_reference
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.geometry_judge import GEOMETRY_SIGNALS, GeometryJudge
from facepaint.runtime.evaluation.streams import iter_frames, make_judge_tracker, video_rate
from facepaint.runtime.portrait import load_portrait
from facepaint.runtime.session import open_engine, open_tracker

SIGNALS = ("jaw", "smile", "blink", "yaw", "pitch", "roll")
# Frames searched for the most open mouth when a clip is cut to start mid-word (2 s at 30 fps).
OPEN_SEARCH = 60

ROOT = Path(__file__).resolve().parents[1]


def open_start(faces: Sequence) -> int:
    """Index of the most open mouth among the first ``OPEN_SEARCH`` faces."""
    jaw = [f.blendshape("jawOpen") if f is not None else -1.0 for f in faces[:OPEN_SEARCH]]
    return int(np.argmax(jaw))


class Clip:
    """A driving clip's frames, tracked faces (offline tracker settings) and second-judge rows."""

    def __init__(self, path: Path, config, frames: int, geometry: GeometryJudge) -> None:
        step = 1000.0 / float(video_rate(str(path)))
        tracker = open_tracker(config.tracker, live=False)
        self.frames, self.faces, self.times = [], [], []
        for i, rgb in enumerate(iter_frames(str(path))):
            if i >= frames + OPEN_SEARCH:
                break
            found = tracker.track(rgb, round(i * step))
            self.frames.append(rgb)
            self.faces.append(found[0] if found else None)
            self.times.append(i * step / 1000.0)
        tracker.close()
        rows = [geometry.measure(f) for f in self.frames]
        self.geometry = M.geometry_rows(rows, len(GEOMETRY_SIGNALS))

    def cut(self, start: int, frames: int) -> tuple[list, list, list, np.ndarray]:
        """Frames, faces, times (from 0) and second-judge rows of ``[start, start + frames)``."""
        end = start + frames
        times = [t - self.times[start] for t in self.times[start:end]]
        return self.frames[start:end], self.faces[start:end], times, self.geometry[start:end]


def render_and_judge(config, portrait, frames, faces, times, geometry: GeometryJudge,
                     auto: bool) -> tuple[dict, int]:
    """Figures per signal and judge for one render, and the reference frame used."""
    engine = open_engine(config, portrait)
    ref = 0
    if auto:
        ref = choose_reference(faces)
        engine.calibrate(faces[ref])
    smoother = CenteredSmoother()
    order = [p for i, face in enumerate(faces) for p in smoother.push(i, face)] + smoother.flush()
    judge = make_judge_tracker()
    tracks, rows = [None] * len(faces), [None] * len(faces)
    for i, face in order:
        out = engine.render(frames[i], face, times[i])
        found = judge.track(out, round(times[i] * 1000))
        tracks[i] = found[0] if found else None
        rows[i] = geometry.measure(out)
    judge.close()
    return (M.series_from_tracks(tracks), M.geometry_rows(rows, len(GEOMETRY_SIGNALS))), ref


def figures(out, drv_faces, drv_geometry) -> dict[str, dict[str, tuple]]:
    """{judge: {signal: (r, amplitude)}} for one output against its driving cut."""
    series, geo = out
    drv = M.series_from_tracks(drv_faces)
    mp = {**M.expression_metrics(series, drv)["signals"], **M.pose_metrics(series, drv)}
    dl = M.geometry_metrics(geo, drv_geometry, GEOMETRY_SIGNALS)
    return {"mediapipe": {s: (mp[s]["r"], mp[s]["amplitude"]) for s in SIGNALS},
            "dlib": {s: (dl[s]["r"], dl[s]["amplitude"]) for s in SIGNALS}}


def line(clip: str, start: str, ref: str, index: int, figs: dict) -> str:
    cells = []
    for judge in ("mediapipe", "dlib"):
        cells.append(" ".join(f"{_num(r)}/{_num(a)}" for r, a in figs[judge].values()))
    return f"{clip:8s} {start:5s} {ref:5s} {index:4d} | " + " | ".join(cells)


def _num(v) -> str:
    return " -- " if v is None else f"{v:4.2f}"


def medians(rows: list[dict], start: str, ref: str, judge: str) -> str:
    sel = [r for r in rows if r["start"] == start and r["ref"] == ref]
    cells = []
    for s in SIGNALS:
        rs = [r["figs"][judge][s][0] for r in sel if r["figs"][judge][s][0] is not None]
        amps = [r["figs"][judge][s][1] for r in sel if r["figs"][judge][s][1] is not None]
        cells.append(f"{s} {statistics.median(rs):.2f}/{statistics.median(amps):.2f}" if rs else f"{s} --")
    return f"{start:5s} {ref:5s} {judge:9s} " + "  ".join(cells)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    p.add_argument("--portrait", default="lp_s42", help="portrait file stem (default lp_s42)")
    p.add_argument("--clips", help="clip stems (default: every clip in driving/ and extra/)")
    p.add_argument("--max-frames", type=int, default=120)
    args = p.parse_args(argv)
    paths = sorted((args.media / "driving").glob("*.mp4")) + sorted((args.media / "extra").glob("*.mp4"))
    if args.clips:
        paths = [q for q in paths if q.stem in args.clips.split(",")]
    geometry = GeometryJudge()
    rows = []
    print(f"clip     start ref   frm  | MediaPipe r/amp: {' '.join(SIGNALS)} | dlib r/amp: same")
    for path in paths:
        base = {"source": str(args.media / "portraits" / f"{args.portrait}.jpg"), "driving": str(path),
                "output": "unused.mp4", "progress": False}
        clip = None
        for ref in ("first", "auto"):
            config = build_app_config(base, {"engine": {"transformer": {"reference": ref}}})
            if clip is None:
                clip, portrait = Clip(path, config, args.max_frames, geometry), load_portrait(config)
            for start, s in (("start", 0), ("open", open_start(clip.faces))):
                frames, faces, times, drv_geo = clip.cut(s, args.max_frames)
                out, index = render_and_judge(config, portrait, frames, faces, times, geometry, ref == "auto")
                figs = figures(out, faces, drv_geo)
                rows.append({"clip": path.stem, "start": start, "ref": ref, "figs": figs})
                print(line(path.stem, start, ref, index, figs) + f" (cut at {s})", flush=True)
    print(f"\nmedians over {len(paths)} clips, portrait {args.portrait}, {args.max_frames} frames (r/amplitude):")
    for start in ("start", "open"):
        for judge in ("mediapipe", "dlib"):
            for ref in ("first", "auto"):
                print(medians(rows, start, ref, judge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
