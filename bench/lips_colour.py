"""The typical lips colour the mouth net's driver layout is weighted by (``mouth_net.LIPS``).

    python bench/lips_colour.py [--media ../shared/media/train]

Per training clip: every 20th of its first 121 frames tracked (MediaPipe, video mode), the median
RGB of the lips ring in the 64 px mouth square, the clip's median of those; printed per clip as
chromaticity (r + g + b = 1) and, last, the median over clips (what ``LIPS`` holds) and its spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facepaint.engine.neural import mouth_net as mn
from facepaint.engine.topology import get_topology
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.training.cache import clip_files

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "train"
EVERY, FRAMES = 20, 121


def clip_lips(tracker: MediaPipeTracker, clip: Path) -> np.ndarray | None:
    """The clip's median lips RGB over its sampled frames (None: no face in any)."""
    tracker.reset()
    found = []
    with VideoSource(str(clip)) as video:
        for i, frame in zip(range(FRAMES), video, strict=False):
            if i % EVERY:
                continue
            got = tracker.track(np.ascontiguousarray(frame.image), int(1000 * frame.pts) + i)
            if not got:
                continue
            lm, topo = np.asarray(got[0].landmarks), get_topology(got[0].topology)
            m = mn.square_affine(lm, topo, 64)
            ring = mn.lips_ring(mn.apply_affine(m, lm[topo.lips_outer]), mn.apply_affine(m, lm[topo.lips_inner]), 64)
            if ring.sum() >= 8:
                found.append(np.median(mn.cut(frame.image, m, 64).astype(np.float32)[ring], 0))
    return np.median(found, 0) if found else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", default=str(MEDIA))
    args = p.parse_args()
    rows = []
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for clip in clip_files(Path(args.media)):
            lips = clip_lips(tracker, clip)
            if lips is not None:
                rows.append(lips / lips.sum())
                print(f"{clip.name:40s} RGB {np.round(lips, 1)}  chromaticity {np.round(rows[-1], 3)}", flush=True)
    print(f"median over {len(rows)} clips {np.round(np.median(rows, 0), 3)}, spread {np.round(np.std(rows, 0), 3)} "
          f"(mouth_net.LIPS: {mn.LIPS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
