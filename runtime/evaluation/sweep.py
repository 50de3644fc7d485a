"""Fast motion sweep: how many portrait x driving pairs meet issue 2's motion targets.

Every pair is rendered in memory the way ``facepaint-live --driving`` renders it (offline tracker
settings, centred smoothing, the same engine), without encoding, and judged by MediaPipe. Each
signal is split by whether it is *reliable* in its clip: the two judges (MediaPipe and dlib's 68
points) agree on it in the driving video itself. A few minutes on 2 cores instead of the quarter
hour of ``bench/results.py``: this is the loop for trying engine settings or a new stage.

    python bench/motion_sweep.py                                    # 42 pairs, 150 frames each
    python bench/motion_sweep.py --set transformer.mouth=0.85 --set transformer.ring_follow=0.3
    python bench/motion_sweep.py --pairs obama:lp_d12,lp_s10:lp_d3 --rows
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tomllib

from facepaint.engine.errors import FacepaintError
from facepaint.engine.reference import choose_reference
from facepaint.plugins.base import Frame
from facepaint.plugins.trackers.smoothing import CenteredSmoother
from facepaint.runtime.config import AppConfig, build_app_config
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.geometry_judge import GeometryJudge
from facepaint.runtime.evaluation.results import RELIABLE, TARGETS
from facepaint.runtime.evaluation.streams import iter_frames, make_judge_tracker, video_rate
from facepaint.runtime.portrait import Portrait, load_portrait
from facepaint.runtime.session import Driver, open_engine, open_tracker


def parse_settings(items: Sequence[str]) -> dict:
    """``["transformer.mouth=0.85", ...]`` -> ``{"engine": {"transformer": {"mouth": 0.85}}}``.

    Values are TOML (numbers, true/false, quoted strings); a bare word is taken as a string.
    """
    tree: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise FacepaintError(f"--set wants SECTION.KEY=VALUE, got '{item}'")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        node = tree.setdefault("engine", {})
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


class Clip:
    """One driving clip's first ``max_frames`` frames, tracked once for every portrait."""

    def __init__(self, path: Path, config: AppConfig, max_frames: int, geometry: GeometryJudge | None) -> None:
        step = 1000.0 / float(video_rate(str(path)))
        tracker = open_tracker(config.tracker, live=False)
        self.frames, self.faces, self.times = [], [], []
        for i, frame in enumerate(iter_frames(str(path))):
            if i >= max_frames:
                break
            faces = tracker.track(frame, round(i * step))
            self.frames.append(frame)
            self.faces.append(faces[0] if faces else None)
            self.times.append(round(i * step))
        tracker.close()
        self.series = M.series_from_tracks(self.faces)
        self.agreement: dict = {}
        if geometry is not None:
            measured = [geometry.measure(f) for f in self.frames]
            rows = [m if m is not None else np.full(len(M.GEOMETRY_SIGNALS), np.nan) for m in measured]
            self.agreement = M.judge_agreement(self.series, np.asarray(rows))


def render_and_judge(config: AppConfig, portrait: Portrait, clip: Clip) -> dict[str, tuple[float | None, float | None]]:
    """(r, amplitude ratio) per target signal for one pair, judged by MediaPipe on the output."""
    engine = open_engine(config, portrait)
    if config.engine.transformer.reference == "auto":  # as the render's look-ahead does
        best = choose_reference(clip.faces)
        face = clip.faces[best] if best is not None else None
        if face is not None:
            engine.calibrate(face)
    driver = Driver(ReplayTracker(clip.faces), engine, CenteredSmoother())
    pairs = enumerate(zip(clip.frames, clip.times, strict=True))
    frames = (Frame(image, i, t / 1000.0, 0.0) for i, (image, t) in pairs)
    judge = make_judge_tracker()
    judged = []
    for item in driver.run(frames):
        found = judge.track(item.output, clip.times[item.frame.index])
        judged.append(found[0] if found else None)
    judge.close()
    engine.close()
    out_series = M.series_from_tracks(judged)
    both = {**M.expression_metrics(out_series, clip.series)["signals"], **M.pose_metrics(out_series, clip.series)}
    return {name: (both[name]["r"], both[name]["amplitude"]) for name in TARGETS}


class ReplayTracker:
    """The clip's faces, tracked once, replayed in order for every portrait (the sweep renders
    each clip onto several portraits: tracking it again each time would only repeat the result)."""

    def __init__(self, faces: list) -> None:
        self._faces = iter(faces)

    def track(self, image: object, timestamp_ms: int | None = None) -> list:
        face = next(self._faces)
        return [] if face is None else [face]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def meets(name: str, figures: tuple[float | None, float | None]) -> bool:
    """Whether (r, amplitude) reach the target of signal ``name``."""
    r, amp = figures
    r_min, amp_min = TARGETS[name]
    return r is not None and amp is not None and r >= r_min and amp >= amp_min


def summary(rows: list[dict]) -> list[str]:
    """Per signal: passes over all pairs, over reliable and unreliable ones, median r and amplitude."""
    lines = [f"{'signal':7s} {'all':>7s} {'reliable':>9s} {'unreliable':>11s} {'median r':>9s} {'median amp':>11s}"]
    totals = np.zeros(4, int)
    for name in TARGETS:
        ok = np.array([meets(name, row["signals"][name]) for row in rows], bool)
        rel = np.array([(row["agreement"].get(name) or -1.0) >= RELIABLE for row in rows], bool)
        counts = np.array([(ok & rel).sum(), rel.sum(), (ok & ~rel).sum(), (~rel).sum()])
        totals += counts
        r_med = _median(row["signals"][name][0] for row in rows)
        a_med = _median(row["signals"][name][1] for row in rows)
        lines.append(f"{name:7s} {_counts(counts)} {r_med:9.2f} {a_med:11.2f}")
    lines.append(f"{'total':7s} {_counts(totals)}")
    return lines


def _counts(c: np.ndarray) -> str:
    """The all, reliable and unreliable columns (passes/pairs) from (reliable passes, reliable pairs,
    unreliable passes, unreliable pairs)."""
    return f"{c[0] + c[2]:3d}/{c[1] + c[3]:<3d} {c[0]:4d}/{c[1]:<4d} {c[2]:5d}/{c[3]:<5d}"


def _median(values) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def pair_line(row: dict) -> str:
    """One pair: r/amplitude per signal, a * where the target is met."""
    cells = [f"{name} {_num(r)}/{_num(a)}{'*' if meets(name, (r, a)) else ' '}"
             for name, (r, a) in row["signals"].items()]
    return f"{row['portrait']:8s} {row['clip']:7s} " + "  ".join(cells)


def _num(value: float | None) -> str:
    return "  – " if value is None else f"{value:4.2f}"


def pairs_to_run(media: Path, spec: str | None) -> list[tuple[str, str]]:
    """(portrait stem, clip stem) pairs: every portrait x every clip, or those named in ``spec``."""
    if spec:
        return [tuple(item.split(":", 1)) for item in spec.split(",")]  # type: ignore[misc]
    portraits = sorted(p.stem for p in (media / "portraits").glob("*.jpg"))
    clips = sorted(p.stem for p in (media / "driving").glob("*.mp4"))
    return [(p, c) for c in clips for p in portraits]


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(description="Motion targets over portrait x driving pairs, fast (no encoding).")
    p.add_argument("--media", type=Path, required=True, help="shared media folder")
    p.add_argument("--max-frames", type=int, default=150, help="frames per clip (default 150)")
    p.add_argument("--pairs", help="only these pairs, as portrait:clip,portrait:clip (file stems)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="an engine setting for this sweep, as in the config file's [engine] table (repeatable)")
    p.add_argument("--no-agreement", action="store_true", help="skip the second judge (no reliable/unreliable split)")
    p.add_argument("--rows", action="store_true", help="print every pair's figures")
    p.add_argument("--json", type=Path, help="write every pair's figures to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep; progress on stderr, the table on stdout."""
    args = build_parser().parse_args(argv)
    try:
        settings = parse_settings(args.settings)
        pairs = pairs_to_run(args.media, args.pairs)
        geometry = None if args.no_agreement else GeometryJudge()
        start, clips, portraits, rows = time.monotonic(), {}, {}, []
        for portrait, clip_name in pairs:
            base = {"source": str(args.media / "portraits" / f"{portrait}.jpg"),
                    "driving": str(args.media / "driving" / f"{clip_name}.mp4"), "output": "unused.mp4",
                    "progress": False}
            config = build_app_config(base, settings)
            if clip_name not in clips:
                clips[clip_name] = Clip(Path(str(config.driving)), config, args.max_frames, geometry)
            if portrait not in portraits:
                portraits[portrait] = load_portrait(config)
            row = {"portrait": portrait, "clip": clip_name, "agreement": clips[clip_name].agreement,
                   "signals": render_and_judge(config, portraits[portrait], clips[clip_name])}
            rows.append(row)
            print(pair_line(row) if args.rows else f"{portrait} x {clip_name}",
                  file=sys.stdout if args.rows else sys.stderr, flush=True)
    except FacepaintError as exc:
        print(f"motion_sweep: {exc}", file=sys.stderr)
        return 2
    print(f"{len(rows)} pairs, {args.max_frames} frames each, {time.monotonic() - start:.0f} s; "
          f"settings: {' '.join(args.settings) or 'defaults'}; reliable = judges agree >= {RELIABLE} on the driving")
    print("\n".join(summary(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0

