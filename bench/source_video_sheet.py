"""A video source rendered, looked at and measured (issue 22): contact sheet plus jaw / blink / pose r.

    python bench/source_video_sheet.py --source extra/lp_s32.mp4 --driving driving/lp_d3.mp4 \
        --seconds 4 --out docs/source_video_sheet.png

Renders the pair through ``render_source_video`` (``--source-motion keep``, ``--fit cut``), then
tracks the three streams frame for frame (source frame i, driving frame i, output frame i) with an
unsmoothed judge tracker and prints: jaw and blink r of the output against the driver, the head
yaw / pitch r of the output against the source and against the driver (keep: it should follow the
source), and the mean jaw opening of each. The sheet has a column per sampled frame (the driver's
widest mouth and deepest blink among them) and three rows: source frame, driver, output.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.mouth_frames import face_tile, label
from facepaint.runtime.evaluation.streams import iter_frames, make_judge_tracker, video_rate
from facepaint.runtime.source_video import render_source_video

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
TILE = 180
COLUMNS = 6


def tracked(path: str, frames: int) -> tuple[list[np.ndarray], list]:
    """The first ``frames`` RGB frames of ``path`` and the judge's face in each (video mode)."""
    tracker = make_judge_tracker()
    images, faces = [], []
    try:
        for i, rgb in zip(range(frames), iter_frames(path), strict=False):
            found = tracker.track(np.ascontiguousarray(rgb), int(i * 1000 / 30) + 1)
            images.append(rgb)
            faces.append(found[0] if found else None)
    finally:
        tracker.close()
    return images, faces


def figures(src: list, drv: list, out: list) -> dict[str, float | None]:
    """jaw / blink r (output vs driver), yaw / pitch r (output vs source and vs driver)."""
    s, d, o = (M.series_from_tracks(x) for x in (src, drv, out))
    result = {f"{n} r out~driver": M.pearson(M.signal(o, n), M.signal(d, n)) for n in ("jaw", "blink")}
    for k, angle in enumerate(M.ANGLES[:2]):
        result[f"{angle} r out~source"] = M.pearson(o.rotation[:, k], s.rotation[:, k])
        result[f"{angle} r out~driver"] = M.pearson(o.rotation[:, k], d.rotation[:, k])
    for name, series in (("source", s), ("driver", d), ("output", o)):
        result[f"jaw mean {name}"] = float(np.nanmean(M.signal(series, "jaw")))
    return result


def sheet(streams: list[tuple[str, list[np.ndarray], list]], columns: list[int]) -> np.ndarray:
    rows = []
    for name, images, faces in streams:
        tiles = []
        for i in columns:
            face = faces[i] if faces[i] is not None else next(f for f in faces if f is not None)
            tiles.append(label(face_tile(images[i], face.landmarks, TILE), f"{name} {i}"))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="extra/lp_s32.mp4", help="source clip, relative to ../shared/media")
    p.add_argument("--driving", default="driving/lp_d3.mp4", help="driving clip, relative to ../shared/media")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--motion", default="keep", choices=("keep", "driver"))
    p.add_argument("--out", default="docs/source_video_sheet.png")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        output = str(Path(tmp) / "out.mp4")
        config = build_app_config({"source": str(MEDIA / args.source), "driving": str(MEDIA / args.driving),
                                   "output": output, "duration": args.seconds, "progress": False,
                                   "source_video": {"fit": "cut", "motion": args.motion}})
        stats = render_source_video(config)
        n = int(stats["frames_written"])
        out_images, out_faces = tracked(output, n)
    src_images, src_faces = tracked(str(MEDIA / args.source), n)
    # --fit cut: output frame i shows the driving frame at its time (the clips' rates may differ)
    shown = [int(i / float(video_rate(str(MEDIA / args.source))) * float(video_rate(str(MEDIA / args.driving))) + 1e-9)
             for i in range(n)]
    drv_all, drv_all_faces = tracked(str(MEDIA / args.driving), shown[-1] + 1)
    drv_images, drv_faces = [drv_all[j] for j in shown], [drv_all_faces[j] for j in shown]
    print(f"{args.source} x {args.driving}: {n} frames, render {stats['fps']:.1f} fps")
    for key, value in figures(src_faces, drv_faces, out_faces).items():
        print(f"  {key}: {'-' if value is None else f'{value:.3f}'}")
    jaw = M.signal(M.series_from_tracks(drv_faces), "jaw")
    blink = M.signal(M.series_from_tracks(drv_faces), "blink")
    picks = {int(np.nanargmax(jaw)), int(np.nanargmax(blink))}
    picks |= {int(i) for i in np.linspace(0, n - 1, COLUMNS)}
    columns = sorted(picks)[: COLUMNS + 2]
    image = sheet([("source", src_images, src_faces), ("driver", drv_images, drv_faces),
                   ("output", out_images, out_faces)], columns)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, image[:, :, ::-1])
    print(f"wrote {args.out} (columns: frames {columns})")


if __name__ == "__main__":
    main()
