"""The mouth protocol (issue 20) on the validate clips; writes its table into docs/RESULTS.md.

    nice -n 10 python bench/mouth.py --clips 6 --max-frames 150 [--max-side 512] [--no-write]

Self-reenactment (source = each clip's first frame, ``--reference first``), judged by dlib's 68
points on the frames where the true mouth is open (``runtime.evaluation.mouth``). Rows: today's
colour match over the lower-face box (``mouth_colour = "driver"``) and the portrait's colours
(``"portrait"``), each driven by the clean, warm (R x1.25, B x0.7) and greyscale clip, and a
black-and-white source (the first frame in greyscale) driven by the clean clip; and a pixel-blind
row (no driving frame: the interior is the cavity an expression edit gets), each with the paint
(``mouth_fill = "paint"``) and the mouth net (``"neural"``, which without a driving frame paints
with no layout). ``--clips N`` takes N
clips evenly spread over the (name-sorted) clips whose longer side is at most ``--max-side``.
Tracks, dlib's truth points and each row's figures are cached under ``--cache`` (a row's cache
is keyed by the engine's source, and the net's rows by its weights too, so a change renders them again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from facepaint.engine.face_reenactor import MOUTH_FILLS
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.geometry_judge import GeometryJudge
from facepaint.runtime.evaluation.mouth import DRIVERS, greyscale, interior_mask, lab_pixels
from facepaint.runtime.evaluation.mouth_frames import read_clip, render_at
from facepaint.runtime.evaluation.mouth_runs import MouthSetting, open_frames, run_setting, track_clip
from facepaint.runtime.training.cache import clip_files

ROOT = Path(__file__).resolve().parents[1]
# The paint (portrait colours, the default) and the mouth net, each driven by the clean, warm and
# greyscale clip, from a black-and-white source, and pixel-blind (no driving frame: the paint's
# cavity, the net without the driver's layout).
SETTINGS = tuple(
    row for fill in ("paint", "neural", "hybrid") for row in (
        *(MouthSetting(f"{fill} {driver}", "portrait", driver, fill=fill) for driver in DRIVERS),
        MouthSetting(f"{fill} bw-source", "portrait", bw_source=True, fill=fill),
        MouthSetting(f"{fill} pixel-blind", "portrait", blind=True, fill=fill),
        *(MouthSetting(f"{fill} {driver}, clean track", "portrait", driver, fill=fill, track="clean")
          for driver in DRIVERS if driver != "clean")))
COLUMNS = ("opening", "smooth_gap", "target_gap", "fill", "l1", "colour", "chroma_err", "chroma", "sharp", "flicker",
           "render_ms")
# Black-and-white portraits (made grey here) driven by colour clips: the chroma in the open mouth.
BW_PORTRAITS = ("lp_s42", "lp_s10", "obama", "biden2")
BW_DRIVING = ("lp_d10", "lp_d12")
BW_FRAMES = 8  # the widest-mouth frames of each clip
START, END = "<!-- mouth-protocol:start -->", "<!-- mouth-protocol:end -->"


def code_key(fill: str) -> str:
    """A hash of the engine's source, and for the mouth net's rows of its weights too: a row cached
    under another one is rendered again (new weights re-render the net's rows only)."""
    digest = hashlib.sha1()
    weights = [ROOT / "engine" / "neural" / "weights" / "mouth_net.safetensors"] if MOUTH_FILLS[fill] else []
    for path in [*sorted((ROOT / "engine").rglob("*.py")), *weights]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def pick_clips(media: Path, n: int | None, max_side: int) -> list[Path]:
    """``n`` clips evenly spread over the name-sorted clips no larger than ``max_side``."""
    import av

    fits = []
    for clip in clip_files(media):
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            if max_side <= 0 or max(stream.width, stream.height) <= max_side:
                fits.append(clip)
    if n is None or n >= len(fits):
        return fits
    return [fits[int(round(i))] for i in np.linspace(0, len(fits) - 1, n)]


def cached(path: Path, make):
    """``make()``, pickled at ``path`` (read back when it is there)."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.write_bytes(pickle.dumps(value))
    return value


def clip_rows(clip: Path, max_frames: int, cache: Path, judge: GeometryJudge,
              keys: dict[str, str]) -> dict[str, dict] | None:
    """Every setting's figures on one clip (None: no face in its first frame)."""
    with VideoSource(clip) as video:
        fps = float(video.fps) if getattr(video, "fps", None) else 25.0
        frames = [f.image for f, _ in zip(video, range(max_frames), strict=False)]
    stem = f"{clip.stem}_{max_frames}"
    truth = cached(cache / f"{stem}_truth.pkl", lambda: [judge.landmarks(f) for f in frames])
    if open_frames(truth) < 5:
        return None
    tracks = {}
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for name, tint in DRIVERS.items():
            tracks[name] = cached(cache / f"{stem}_{name}_track.pkl",
                                  lambda t=tint: track_clip(tracker, [t(f) for f in frames], fps))
        bw_face = cached(cache / f"{stem}_bw_face.pkl",
                         lambda: track_clip(tracker, [greyscale(frames[0])], fps)[0])
    if tracks["clean"][0] is None or bw_face is None:
        return None
    rows = {}
    for setting in SETTINGS:
        source_face = bw_face if setting.bw_source else tracks["clean"][0]
        path = cache / f"{stem}_{setting.name.replace(' ', '_')}_{keys[setting.fill]}.json"
        if path.exists():
            rows[setting.name] = json.loads(path.read_text())
            continue
        faces = tracks[setting.track or setting.driver][1]
        rows[setting.name] = run_setting(setting, frames, truth, source_face, faces, judge, fps)
        path.write_text(json.dumps(rows[setting.name]))
    return rows


def bw_chroma(media: Path, judge: GeometryJudge, fills: tuple[str, ...]) -> dict[str, list[float]]:
    """Per mouth fill (portrait colours), the mean a/b length inside the output's open mouth (dlib's inner lips on
    the output) for each black-and-white portrait x colour clip x widest-mouth frame."""
    import cv2

    found: dict[str, list[float]] = {f: [] for f in fills}
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        clips = [read_clip(str(media / "driving" / f"{name}.mp4"), tracker, 300) for name in BW_DRIVING]
        for name in BW_PORTRAITS:
            image = greyscale(cv2.cvtColor(cv2.imread(str(media / "portraits" / f"{name}.jpg")), cv2.COLOR_BGR2RGB))
            face = tracker.track(np.ascontiguousarray(image), None)[0]
            for clip in clips:
                jaw = [f.blendshape("jawOpen") if f is not None else -1.0 for f in clip.faces]
                for index in np.argsort(jaw)[-BW_FRAMES:]:
                    for fill in fills:
                        out, _ = render_at(image, face, clip, int(index), "portrait", fill=fill)
                        pts = judge.landmarks(out)
                        mask = interior_mask(pts, out.shape[:2]) if pts is not None else None
                        if mask is not None and mask.sum() >= 40:
                            found[fill].append(float(np.linalg.norm(lab_pixels(out, mask)[:, 1:], axis=1).mean()))
            tracker.reset()
    return found


def table(per_clip: dict[str, dict[str, dict]], names: list[str]) -> list[str]:
    """Markdown: per setting, the median over clips of each clip's median (opening: min-max too)."""
    lines = ["| setting | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in names:
        cells = []
        for col in COLUMNS:
            values = np.array([rows[name][col] for rows in per_clip.values() if name in rows], np.float64)
            values = values[np.isfinite(values)]
            if not len(values):
                cells.append("–")
            elif col in ("opening", "smooth_gap", "target_gap"):
                cells.append(f"{np.median(values):.2f} ({values.min():.2f}–{values.max():.2f})")
            else:
                cells.append(f"{np.median(values):.3f}" if col in ("l1",) else f"{np.median(values):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def per_clip_lines(per_clip: dict[str, dict[str, dict]], setting: str) -> list[str]:
    """One line per clip for ``setting``: opening by stage, frames judged, colour figures."""
    lines = ["| clip | open frames | smoothed / raw | target / raw | output / truth | colour "
             "| L1 clean / warm / grey |", "|---|---|---|---|---|---|---|"]
    colour = setting.rsplit(" ", 1)[0]
    for clip, rows in per_clip.items():
        r = rows[setting]
        l1s = " / ".join(f"{rows[f'{colour} {d}']['l1']:.3f}" for d in DRIVERS)
        lines.append(f"| {clip} | {r['frames']} | {r['smooth_gap']:.2f} | {r['target_gap']:.2f} | "
                     f"{r['opening']:.2f} | {r['colour']:.1f} | {l1s} |")
    return lines


def tint_lines(per_clip: dict[str, dict[str, dict]]) -> list[str]:
    """Per fill, the median over clips of the interior L1 with the warm and the greyscale driver
    over the clean driver's (the target: at most 1.05), tracked as a camera would and with the
    clean clip's track (only the pixels the fill reads tinted)."""
    lines = ["| mouth fill | L1 warm / clean | L1 grey / clean | the same, clean track |", "|---|---|---|---|"]
    for fill in dict.fromkeys(s.fill for s in SETTINGS):
        ratios = [np.nanmedian([rows[f"{fill} {d}"]["l1"] / rows[f"{fill} clean"]["l1"] for rows in per_clip.values()])
                  for d in ("warm", "grey", "warm, clean track", "grey, clean track")]
        lines.append(f"| {fill} | {ratios[0]:.2f} | {ratios[1]:.2f} | {ratios[2]:.2f} / {ratios[3]:.2f} |")
    return lines


def write_results(path: Path, body: list[str]) -> None:
    """Put ``body`` between the mouth markers of ``path`` (appended when they are not there)."""
    text = path.read_text()
    block = "\n".join([START, *body, END])
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


LEGEND = (
    "opening = output inner-lip gap / truth's (dlib); smooth_gap, target_gap = the smoothed track's and the "
    "target landmarks' gap / the raw track's (MediaPipe); fill = the mouth paint's opening strength (0: the "
    "interior is the source's own, warped); l1 inside the true inner lip (0-1); colour = ΔE of the interiors' "
    "mean Lab; chroma_err = the same over a/b; chroma = mean a/b length of the output interior; sharp = "
    "Laplacian energy output / truth; flicker = mean frame-to-frame change output / truth over 50 open pairs; "
    "render_ms = engine.render median, on a machine shared with other jobs (noisy: `bench/mouth_speed.py` "
    "times the paint alone). Warm and greyscale rows: the tinted clip also drives the tracker, so their "
    "tracks (and fill) differ from the clean clip's.")


def report(args, per_clip: dict, before: dict, bw: dict[str, list[float]], minutes: float) -> list[str]:
    """The markdown section: the table (``before`` rows first when given), per-clip openings, B/W."""
    names = [s.name for s in SETTINGS]
    if before:
        for clip, rows in before.items():
            per_clip.setdefault(clip, {}).update({f"before: {k}": v for k, v in rows.items()})
        names = [f"before: {k}" for k in next(iter(before.values()))] + names
    cmd = (f"`nice -n 10 python bench/mouth.py --clips {args.clips} --max-frames {args.max_frames} "
           f"--max-side {args.max_side}" + (" --before before.json`" if before else "`"))
    lines = ["## Mouth (issue 20): self-reenactment, open-mouth frames, dlib judge", "",
             f"{cmd} ({len(per_clip)} validate clips, their first {args.max_frames} frames, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}, {minutes:.0f} min with the tracks cached). A subset, "
             "not the whole length of the 26 clips: the machine is two shared cores. Each cell: the median over "
             "clips of the clip's median over its open-mouth frames (opening and the stage gaps: min-max over "
             "clips too). " + ("`before:` rows: the same script on the base revision (its `--json-out`), same "
                               "clips and caches, run just before. " if before else ""), "", LEGEND, "",
             *table(per_clip, names), "", *tint_lines(per_clip),
             "", "Per clip (the paint, clean driver):", "", *per_clip_lines(per_clip, "paint clean"),
             "", "Per clip (the mouth net, clean driver):", "", *per_clip_lines(per_clip, "neural clean"), ""]
    if before:
        lines += ["Per clip, before (the base revision, its colour match, clean driver):", "",
                  *per_clip_lines(per_clip, "before: driver clean"), ""]
    if bw:
        lines += [f"Black-and-white portraits ({', '.join(BW_PORTRAITS)} made grey) driven by colour clips "
                  f"({', '.join(BW_DRIVING)}, each clip's {BW_FRAMES} widest mouths): mean a/b length inside "
                  "the output's open mouth (dlib's inner lips on the output); grey is 0.", "",
                  "| mouth fill | median | max | frames |", "|---|---|---|---|"]
        lines += [f"| {c} | {np.median(v):.2f} | {np.max(v):.2f} | {len(v)} |" for c, v in bw.items() if v]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "validate"))
    p.add_argument("--clips", type=int, help="N clips evenly spread over those that fit --max-side")
    p.add_argument("--max-side", type=int, default=512, help="longest side of a clip (0: any)")
    p.add_argument("--max-frames", type=int, default=150)
    p.add_argument("--cache", default="/tmp/facepaint_mouth")
    p.add_argument("--json-out", help="write the per-clip figures here (for another run's --before)")
    p.add_argument("--before", help="per-clip figures of a run on another revision, shown as before: rows")
    p.add_argument("--no-bw", action="store_true", help="skip the black-and-white portrait figures")
    p.add_argument("--no-write", action="store_true", help="print only, leave docs/RESULTS.md as it is")
    args = p.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    judge, start = GeometryJudge(), time.time()
    keys = {fill: code_key(fill) for fill in dict.fromkeys(s.fill for s in SETTINGS)}
    per_clip = {}
    for clip in pick_clips(Path(args.media), args.clips, args.max_side):
        rows = clip_rows(clip, args.max_frames, cache, judge, keys)
        done = "too few open-mouth frames or no face" if rows is None else f"{len(rows)} rows"
        print(f"{clip.name}: {done}", flush=True)
        if rows is not None:
            per_clip[clip.stem] = rows
    if not per_clip:
        print("no clip had enough open-mouth frames", file=sys.stderr)
        return 1
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(per_clip))
    fills = tuple(dict.fromkeys(s.fill for s in SETTINGS))
    bw = {} if args.no_bw else bw_chroma(Path(args.media).parent, judge, fills)
    before = json.loads(Path(args.before).read_text()) if args.before else {}
    body = report(args, per_clip, before, bw, (time.time() - start) / 60)
    print("\n".join(body))
    if not args.no_write:
        write_results(ROOT / "docs" / "RESULTS.md", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
