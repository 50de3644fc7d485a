"""``--faces`` looked at and timed (issue 22): a group still and a two-clip video, both driven by one clip.

    python bench/source_faces_sheet.py --driving driving/lp_d18.mp4 --seconds 3 --out docs/source_faces_sheet.png
    python bench/source_faces_sheet.py --fps --seconds 3      # offline fps, 1 and 2 faces, 1024x480 and 1280x720

Nothing here is committed media: the group still is lp_s42 and lp_s12 side by side (512 px high),
the two-clip videos are lp_s18 | lp_s32 cropped 640x720 around their faces (1280x720) and lp_d14 |
lp_d9 (1024x480), built in a temporary folder. The sheet has a block per case, a column per
sampled time (the driver's widest mouth among them) and three rows: source, driver, output.
``--fps`` prints the render stage's fps and the process CPU time for no ``--faces``, ``--faces 0``
and ``--faces all`` on both clips.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.mouth_frames import label
from facepaint.runtime.evaluation.streams import iter_frames, make_judge_tracker, write_video
from facepaint.runtime.offline import render_file
from facepaint.runtime.source_video import render_source_video

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
HEIGHT = 200
COLUMNS = 5


def frames(path: Path | str, n: int) -> list[np.ndarray]:
    return [f for _, f in zip(range(n), iter_frames(str(path)), strict=False)]


def group_still(tmp: Path) -> Path:
    tiles = []
    for name in ("lp_s42", "lp_s12"):
        image = cv2.imread(str(MEDIA / "portraits" / f"{name}.jpg"))
        scale = 512 / image.shape[0]
        tiles.append(cv2.resize(image, (round(image.shape[1] * scale), 512), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(tmp / "group.png"), np.concatenate(tiles, 1))
    return tmp / "group.png"


def two_clips(tmp: Path, n: int, small: bool) -> Path:
    if small:  # 1024x480: two 512-wide clips
        a, b = frames(MEDIA / "extra" / "lp_d14.mp4", n), frames(MEDIA / "extra" / "lp_d9.mp4", n)
        images = [np.concatenate([x[16:496], y], 1) for x, y in zip(a, b, strict=False)]
    else:  # 1280x720
        a, b = frames(MEDIA / "extra" / "lp_s18.mp4", n), frames(MEDIA / "extra" / "lp_s32.mp4", n)
        images = [np.concatenate([x[:, 416:1056], y[:, 310:950]], 1) for x, y in zip(a, b, strict=False)]
    path = tmp / ("two_1024.mp4" if small else "two_720.mp4")
    write_video(str(path), images, 30)
    return path


def render(source: Path, driving: str, out: Path, seconds: float, faces: str | None) -> dict:
    layer = {"source": str(source), "driving": driving, "output": str(out), "duration": seconds,
             "progress": False, "overwrite": True, "source_video": {"fit": "cut"}}
    if faces is not None:
        layer["faces"] = faces if faces == "all" else [int(faces)]
    config = build_app_config(layer)
    return render_source_video(config) if source.suffix == ".mp4" else render_file(config)


def fit(image: np.ndarray, width: int | None = None) -> np.ndarray:
    h, w = image.shape[:2]
    out = cv2.resize(image, (round(w * HEIGHT / h), HEIGHT), interpolation=cv2.INTER_AREA)
    if width is None or out.shape[1] >= width:
        return out
    pad = np.full((HEIGHT, width, 3), 255, np.uint8)
    x = (width - out.shape[1]) // 2
    pad[:, x:x + out.shape[1]] = out
    return pad


def block(name: str, source: list[np.ndarray], driver: list[np.ndarray], output: list[np.ndarray],
          columns: list[int]) -> np.ndarray:
    """Rows source / driver / output, a column per sampled frame."""
    rows = []
    for row, images in (("source", source), ("driver", driver), ("output", output)):
        width = fit(output[0]).shape[1]
        tiles = [label(fit(images[min(i, len(images) - 1)], width), f"{name} {row} {i}") for i in columns]
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def sheet(args: argparse.Namespace, tmp: Path) -> None:
    driving = str(MEDIA / args.driving)
    n = round(args.seconds * 30)
    drv = frames(driving, n)
    tracker = make_judge_tracker()
    try:
        jaw = M.signal(M.series_from_tracks([next(iter(tracker.track(im, None)), None) for im in drv]), "jaw")
    finally:
        tracker.close()
    columns = sorted({int(np.nanargmax(jaw)), *(int(i) for i in np.linspace(0, len(drv) - 1, COLUMNS - 1))})
    blocks = []
    for name, source in (("group", group_still(tmp)), ("two clips", two_clips(tmp, n, small=False))):
        out = tmp / f"{name.replace(' ', '_')}.mp4"
        stats = render(source, driving, out, args.seconds, "all")
        print(f"{name}: {stats['frames_written']} frames, {stats['fps']:.1f} fps; {stats.get('faces')}")
        src = frames(source, n) if source.suffix == ".mp4" else [cv2.imread(str(source))[:, :, ::-1]]
        blocks.append(block(name, src, drv, frames(out, n), columns))
    width = max(b.shape[1] for b in blocks)
    image = np.concatenate([np.pad(b, ((0, 8), (0, width - b.shape[1]), (0, 0)), constant_values=255)
                            for b in blocks], 0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, np.ascontiguousarray(image[:, :, ::-1]))
    print(f"wrote {args.out} (columns: driving frames {columns})")


def fps(args: argparse.Namespace, tmp: Path) -> None:
    driving = str(MEDIA / args.driving)
    for small in (True, False):
        source = two_clips(tmp, round(args.seconds * 30), small)
        for faces in (None, "0", "all"):
            cpu = time.process_time()
            stats = render(source, driving, tmp / "out.mp4", args.seconds, faces)
            w, h = stats["output_size"]
            print(f"{w}x{h} faces={faces or '-'}: render {stats['fps']:.1f} fps over {stats['frames_written']} "
                  f"frames, whole run {stats['total_s']:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--driving", default="driving/lp_d18.mp4", help="driving clip, relative to ../shared/media")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", action="store_true", help="time the renders instead of making the sheet")
    p.add_argument("--out", default="docs/source_faces_sheet.png")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (fps if args.fps else sheet)(args, Path(tmp))


if __name__ == "__main__":
    main()
