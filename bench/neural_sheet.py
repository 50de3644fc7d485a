"""docs/neural_sheet.png: source, driving, geometric, neural on open-mouth, blink and head-turn frames.

    python bench/neural_sheet.py [--weights /work/runs/gen] [--out docs/neural_sheet.png]
    python bench/neural_sheet.py --sources obama2.jpg lp_s10.jpg --driving ../shared/media/validate/sp_W036_happy.mp4

Driving: ../shared/media/driving/lp_d10.mp4 (frame 0 is the neutral the motion is measured from;
100 is its widest mouth, 223 a full blink, the head turn is its largest |yaw|); another clip given
with --driving has its frames picked from its blendshapes (widest jawOpen, strongest blink,
largest |yaw|). Sources: portraits/ (default Obama and lp_s42). Each cell is the source's face
crop at 256 px.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from facepaint.plugins.sources.image import read_image
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.self_reenact import engines

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CELL = 256


def driving_frames(tracker, clip: Path) -> dict[str, tuple[np.ndarray, object]]:
    """{"neutral", "open mouth", "blink", "head turn"}: (frame, face) of ``clip``."""
    frames, faces = [], []
    with VideoSource(clip) as video:
        for frame in video:
            found = tracker.track(frame.image, int(round(frame.pts * 1000)))
            frames.append(frame.image)
            faces.append(found[0] if found else None)
    yaw = [abs(f.rotation[0]) if f is not None else -1 for f in faces]
    picks = {"neutral": 0, "open mouth": 100, "blink": 223, "head turn": int(np.argmax(yaw))}
    if clip != MEDIA / "driving" / "lp_d10.mp4":
        def score(name: str) -> list[float]:
            return [f.blendshape(name) if f is not None else -1.0 for f in faces]

        blink = np.add(score("eyeBlinkLeft"), score("eyeBlinkRight"))
        picks.update({"neutral": next(i for i, f in enumerate(faces) if f is not None),
                      "open mouth": int(np.argmax(score("jawOpen"))), "blink": int(np.argmax(blink))})
    return {k: (frames[i], faces[i]) for k, i in picks.items()}


def cell(image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``image`` (cut to ``box``) fitted into a CELL square."""
    if box is not None:
        x0, y0, x1, y1 = box
        image = image[y0:y1, x0:x1]
    h, w = image.shape[:2]
    f = CELL / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    out = np.full((CELL, CELL, 3), 255, np.uint8)
    y, x = (CELL - small.shape[0]) // 2, (CELL - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="a train output folder (default: the shipped weights)")
    p.add_argument("--out", default=str(ROOT / "docs" / "neural_sheet.png"))
    p.add_argument("--sources", nargs="+", default=["obama.jpg", "lp_s42.jpg"], help="portraits/ file names")
    p.add_argument("--driving", type=Path, default=MEDIA / "driving" / "lp_d10.mp4")
    args = p.parse_args()
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        drive = driving_frames(tracker, args.driving)
        rows = []
        for name in args.sources:
            image = read_image(str(MEDIA / "portraits" / name), "portrait")
            built = engines(image, tracker.track(image, None)[0], args.weights)
            box = built["geometric"].source.box
            for kind in ("open mouth", "blink", "head turn"):
                cells = [label(cell(image, box), name), label(cell(drive[kind][0]), kind)]
                for engine_name, eng in built.items():
                    eng.render(*drive["neutral"], 0.0)
                    cells.append(label(cell(eng.render(*drive[kind], 1.0), box), engine_name))
                rows.append(np.concatenate(cells, 1))
            for eng in built.values():
                eng.close()
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
