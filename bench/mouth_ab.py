"""A blinded A/B sheet of the mouth: two mouth settings, 40 pairs, left and right at random.

    python bench/mouth_ab.py [--a driver --b portrait] [--out docs/mouth_ab] [--seed 20]
    python bench/mouth_ab.py --a portrait/paint --b portrait/neural --out docs/mouth_net_ab

A setting is ``mouth_colour`` or ``mouth_colour/mouth_fill`` (the fill defaults to ``paint``).

20 self pairs (a validate clip's first frame driven by the same clip, at its widest mouth among
the first ``--max-frames``; the real frame is shown as the reference) and 20 cross pairs (the
shared portraits x the driving clips, at the clip's widest mouth; the driving frame is shown).
Each row: reference | left | right, 256 px squares on the face. The pages are written as
``<out>_1.jpg``...; which side is which setting goes to ``<out>_key.json`` only, so the sheet can be
judged blind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.mouth_frames import face_tile, label, read_clip, render_at
from facepaint.runtime.training.cache import clip_files

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
TILE = 256
PAIRS_PER_KIND = 20
ROWS_PER_PAGE = 10


def self_pairs(tracker, max_frames: int) -> list:
    """(name, portrait, its face, clip, frame index) for the first 20 validate clips with a face."""
    pairs = []
    for clip_path in clip_files(MEDIA / "validate"):
        clip = read_clip(str(clip_path), tracker, max_frames)
        if any(f is not None for f in clip.faces):
            first = clip.neutral()
            pairs.append((f"self {clip_path.stem}", clip.images[first], clip.face(first), clip, clip.widest_mouth()))
        if len(pairs) == PAIRS_PER_KIND:
            break
    return pairs


def cross_pairs(tracker, max_frames: int, rng: np.random.Generator) -> list:
    """(name, portrait, its face, clip, frame index) for 20 distinct portrait x driving-clip pairs
    drawn at random from all of them."""
    portraits = sorted((MEDIA / "portraits").glob("*.jpg"))
    clips = sorted((MEDIA / "driving").glob("*.mp4"))
    read = {c: read_clip(str(c), tracker, max_frames) for c in clips}
    faces = {}
    for path in portraits:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        found = tracker.track(np.ascontiguousarray(image), None)
        if found:
            faces[path] = (image, found[0])
    combos = [(p, c) for p in faces for c in clips]
    chosen = sorted(rng.choice(len(combos), size=min(PAIRS_PER_KIND, len(combos)), replace=False))
    return [(f"cross {combos[k][0].stem} x {combos[k][1].stem}", *faces[combos[k][0]], read[combos[k][1]],
             read[combos[k][1]].widest_mouth()) for k in chosen]


def setting(name: str) -> dict[str, str]:
    """``render_at``'s colour and fill of a ``colour[/fill]`` setting."""
    colour, _, fill = name.partition("/")
    return {"colour": colour, "fill": fill or "paint"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="driver", help="setting A: mouth_colour[/mouth_fill]")
    p.add_argument("--b", default="portrait", help="setting B: mouth_colour[/mouth_fill]")
    p.add_argument("--max-frames", type=int, default=150)
    p.add_argument("--out", default=str(ROOT / "docs" / "mouth_ab"))
    p.add_argument("--seed", type=int, default=20)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, key = [], []
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        pairs = [*self_pairs(tracker, args.max_frames), *cross_pairs(tracker, args.max_frames, rng)]
        for n, (name, image, face, clip, index) in enumerate(pairs, 1):
            outs = {s: render_at(image, face, clip, index, **setting(s)) for s in (args.a, args.b)}
            left, right = (args.a, args.b) if rng.random() < 0.5 else (args.b, args.a)
            reference = label(face_tile(clip.images[index], clip.face(index).landmarks, TILE), f"{n} reference")
            rows.append(np.concatenate([reference, label(face_tile(*outs[left], TILE), f"{n} left"),
                                        label(face_tile(*outs[right], TILE), f"{n} right")], axis=1))
            key.append({"pair": n, "what": name, "frame": index, "left": left, "right": right})
    pages = [rows[i:i + ROWS_PER_PAGE] for i in range(0, len(rows), ROWS_PER_PAGE)]
    for k, page in enumerate(pages, 1):
        # JPEG at quality 95: a quarter of the PNG's size, no visible loss at this scale.
        cv2.imwrite(f"{args.out}_{k}.jpg", cv2.cvtColor(np.concatenate(page, axis=0), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    Path(f"{args.out}_key.json").write_text(json.dumps({"a": args.a, "b": args.b, "pairs": key}, indent=1))
    print(f"wrote {len(rows)} pairs on {len(pages)} pages: {args.out}_1..{len(pages)}.jpg, key {args.out}_key.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
