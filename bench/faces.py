"""Many faces (``--faces``): live and offline fps with 1, 2 and 4 faces, and a contact sheet.

The group photo is built at run time from ``../shared/media/portraits`` (scaled to one height and
put side by side; nothing is committed). Every run uses the same group image, so only the number
of faces animated changes: ``--faces 0``, ``--faces 0,1``, ``--faces all`` (4 faces), plus the
single-face path of today (``--face-index 0``) as the baseline.

* live: the real live pipeline (``facepaint-live --cam CLIP --loop --no-vcam``) for ``--duration``
  seconds per setting, the clip played as a camera at its own rate: delivered fps against the
  camera's, p95 latency and the render ("infer") stage's median time;
* offline: ``render_file`` over the first ``--frames`` frames of the clip (fps of the whole run);
* ``--sheet PNG``: the group source, driving frames and the ``--faces all`` output at the same
  moments (rest, mouth widest, eyes shut, head turned furthest), each face close up, and identity
  per face (dlib AED of each face's crop against the source's, the ``[eval]`` extra).

Usage: ``python bench/faces.py [--duration 10] [--frames 120] [--height 512] [--sheet faces.png]``.
Timings are only meaningful on an otherwise idle machine; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facepaint.runtime.cli import main as facepaint_live
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation.streams import iter_frames
from facepaint.runtime.expression import label
from facepaint.runtime.faces import every_face
from facepaint.runtime.offline import render_file
from facepaint.runtime.portrait import Portrait

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
PORTRAITS = ("lp_s42", "obama", "lp_s12", "biden2")  # 4 faces of different sizes and framing
SETTINGS = (("1 face (--face-index 0, today's path)", ["--face-index", "0"]), ("1 face", ["--faces", "0"]),
            ("2 faces", ["--faces", "0,1"]), ("4 faces", ["--faces", "all"]))


def group_image(names: tuple[str, ...], height: int) -> np.ndarray:
    """The portraits ``names`` scaled to ``height`` and put side by side (BGR)."""
    tiles = []
    for name in names:
        image = cv2.imread(str(MEDIA / "portraits" / f"{name}.jpg"))
        scale = height / image.shape[0]
        tiles.append(cv2.resize(image, (round(image.shape[1] * scale), height), interpolation=cv2.INTER_AREA))
    return np.concatenate(tiles, 1)


def live_once(source: Path, clip: Path, flags: list[str], duration: float, out: Path) -> dict[str, Any]:
    """One live run's ``--stats-json``."""
    stats = out / "live.json"
    code = facepaint_live(["--source", str(source), "--cam", str(clip), "--loop", "--no-vcam", "--duration",
                           str(duration), "--stats-json", str(stats), "--overwrite", *flags])
    if code != 0:
        raise RuntimeError(f"facepaint-live exited with {code}")
    return json.loads(stats.read_text())


def offline_once(source: Path, clip: Path, flags: list[str], frames: int, out: Path) -> dict[str, Any]:
    """One file render's statistics."""
    layer: dict[str, Any] = {"source": str(source), "driving": str(clip), "output": str(out / "out.mp4"),
                             "overwrite": True, "progress": False, "duration": frames / 30.0}
    layer.update({"face_index": int(flags[1])} if flags[0] == "--face-index" else
                 {"faces": "all" if flags[1] == "all" else [int(x) for x in flags[1].split(",")]})
    return render_file(build_app_config(layer))


def sheet(source: Path, clip: Path, output: Path, frames: int, path: Path) -> None:
    """Source, driver and output at rest, mouth widest, eyes shut and head turned furthest; then
    each face close up: in the source, at the mouth widest and with the eyes shut."""
    from facepaint.plugins.base import load_plugin
    from facepaint.plugins.trackers.config import TrackerConfig

    driving = [rgb for _, rgb in zip(range(frames), iter_frames(str(clip)), strict=False)]
    rendered = [rgb for _, rgb in zip(range(frames), iter_frames(str(output)), strict=False)]
    group = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
    tracker = load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False))
    try:
        found = tracker.track(group, None)  # then the tiles, as --faces searches the source
        portrait = every_face(Portrait(str(source), group, found[0], tuple(found), 0), tracker)
        boxes = [_box(face.landmarks, group.shape) for face in portrait.faces]
        faces = [tracker.track(rgb, round(i * 1000 / 30)) for i, rgb in enumerate(driving)]
    finally:
        tracker.close()
    jaw = [f[0].blendshape("jawOpen") if f else 0.0 for f in faces]
    blink = [f[0].blendshape("eyeBlinkLeft") + f[0].blendshape("eyeBlinkRight") if f else 0.0 for f in faces]
    yaw = [abs(float(f[0].rotation[0])) if f else 0.0 for f in faces]
    moments = {"rest": 0, "mouth widest": int(np.argmax(jaw)), "eyes shut": int(np.argmax(blink)),
               "head turned": int(np.argmax(yaw))}
    _identity(group, rendered, boxes)
    rows = [label(group, "group source")]
    for name, i in moments.items():
        rows.append(np.concatenate([label(driving[i], f"driver {name} ({i})"),
                                    label(rendered[min(i, len(rendered) - 1)], f"--faces all, frame {i}")], 1))
    for name, image in (("source", group), ("mouth widest", rendered[moments["mouth widest"]]),
                        ("eyes shut", rendered[moments["eyes shut"]])):
        rows.append(np.concatenate([label(image[b], f"face {k} {name}") for k, b in enumerate(boxes)], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))


def _identity(group: np.ndarray, rendered: list[np.ndarray], boxes: list[tuple[slice, slice]]) -> None:
    """Identity per face: dlib's descriptor distance (AED, < 0.6 same person) of each face's crop in
    every 10th output frame against its crop in the source."""
    from facepaint.runtime.evaluation.identity import IdentityJudge, descriptor_distance

    judge = IdentityJudge()
    for k, box in enumerate(boxes):
        reference = judge.descriptor(np.ascontiguousarray(group[box]))
        found = [judge.descriptor(np.ascontiguousarray(frame[box])) for frame in rendered[::10]]
        distances = [descriptor_distance(reference, d) for d in found if d is not None and reference is not None]
        median = f"{np.median(distances):.3f}" if distances else "n/a"
        print(f"identity face {k}: AED median {median} over {len(distances)} of {len(found)} frames")


def _box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The face's landmark box grown by a quarter each side, inside the image."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    x0, y0 = np.maximum(0, lo - 0.25 * (hi - lo)).astype(int)
    x1, y1 = np.minimum([shape[1], shape[0]], hi + 0.25 * (hi - lo)).astype(int)
    return slice(y0, y1), slice(x0, x1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cam", default=str(MEDIA / "driving" / "lp_d10.mp4"), help="clip played as the camera / driver")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per live run")
    p.add_argument("--frames", type=int, default=120, help="frames per offline render")
    p.add_argument("--height", type=int, default=512, help="height of the group photo")
    p.add_argument("--sheet", help="write the contact sheet here (PNG)")
    p.add_argument("--skip-live", action="store_true", help="offline figures (and sheet) only")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    clip = Path(args.cam)
    with tempfile.TemporaryDirectory(prefix="facepaint-faces-") as tmp:
        out = Path(tmp)
        source = out / "group.png"
        cv2.imwrite(str(source), group_image(PORTRAITS, args.height))
        height, width = cv2.imread(str(source)).shape[:2]
        print(f"group {width}x{height} of {', '.join(PORTRAITS)}; driver {clip.name}; cpus {os.cpu_count()}")
        for name, flags in SETTINGS:
            load = os.getloadavg()[0]
            r = offline_once(source, clip, flags, args.frames, out)
            print(f"offline {name:40s} {r['fps']:5.1f} fps over {r['frames_written']} frames "
                  f"(render p50 {r['stages']['render']['p50']:.1f} ms; load {load:.1f})")
        if args.sheet:
            offline_once(source, clip, ["--faces", "all"], args.frames, out)
            sheet(source, clip, out / "out.mp4", args.frames, Path(args.sheet))
            print(f"sheet: {args.sheet}")
        if args.skip_live:
            return 0
        for name, flags in SETTINGS:
            load = os.getloadavg()[0]
            s = live_once(source, clip, flags, args.duration, out)
            infer = s["stages"].get("infer", {}).get("p50", float("nan"))
            print(f"live    {name:40s} {s['fps']:5.1f} fps of the camera's {s['camera']['fps']:.0f} "
                  f"(infer p50 {infer:.1f} ms, latency p95 {s['latency_ms']['p95']:.0f} ms, "
                  f"dropped {s['dropped']}; load {load:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
