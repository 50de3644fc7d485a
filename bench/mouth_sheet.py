"""Write docs/mouth_sheet.png: the mouth paint, the mouth net and both on four portraits (issue 20).

    python bench/mouth_sheet.py [--driving driving/lp_d12.mp4] [--out docs/mouth_sheet.png]

Rows: a black-and-white portrait (lp_s42 made grey here, at run time), lp_s12 (colourised), obama
and biden2. For each of the driving clip's widest mouth, deepest blink and widest head turn: the
driving frame, the output with the mouth paint (``mouth_fill = "paint"``, portrait colours, the
default), with the mouth net (``"neural"``) and with both (``"hybrid"``: the net up to the portrait's
own opening, the paint beyond), then the three mouths close up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.mouth import greyscale
from facepaint.runtime.evaluation.mouth_frames import face_tile, label, read_clip, render_at

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
PORTRAITS = (("lp_s42 b/w", "lp_s42.jpg", True), ("lp_s12", "lp_s12.jpg", False), ("obama", "obama.jpg", False),
             ("biden2", "biden2.jpg", False))
TILE = 160
FILLS = {"paint": "paint", "neural": "net", "hybrid": "hybrid"}


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def portrait_row(name: str, image: np.ndarray, tracker, clip, frames: dict[str, int]) -> np.ndarray:
    """One portrait: per frame, driver | paint | net | hybrid | the three mouths."""
    found = tracker.track(np.ascontiguousarray(image), None)
    tiles = [label(face_tile(image, found[0].landmarks, TILE), name)]
    for what, index in frames.items():
        drv = clip.faces[index]
        tiles.append(label(face_tile(clip.images[index], drv.landmarks, TILE), f"driver {what}"))
        outs = {f: render_at(image, found[0], clip, index, "portrait", fill=f) for f in FILLS}
        for fill, tag in FILLS.items():
            tiles.append(label(face_tile(*outs[fill], TILE), tag))
        for fill, tag in FILLS.items():
            tiles.append(label(face_tile(*outs[fill], TILE, zoom=4.0), f"{tag} mouth"))
    return np.concatenate(tiles, axis=1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--driving", default=str(MEDIA / "driving" / "lp_d12.mp4"))
    p.add_argument("--max-frames", type=int, default=300)
    p.add_argument("--out", default=str(ROOT / "docs" / "mouth_sheet.png"))
    args = p.parse_args()
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        clip = read_clip(args.driving, tracker, args.max_frames)
        frames = {"open": clip.widest_mouth(), "blink": clip.blink(), "turn": clip.head_turn()}
        rows = []
        for name, file, bw in PORTRAITS:
            image = read_rgb(MEDIA / "portraits" / file)
            rows.append(portrait_row(name, greyscale(image) if bw else image, tracker, clip, frames))
    sheet = np.concatenate(rows, axis=0)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}); driving frames {frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
