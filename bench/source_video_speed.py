"""Video source against still source: per-frame cost and whole renders, at 512x512 and 1280x720 (issue 22).

    OMP_NUM_THREADS=2 python bench/source_video_speed.py [--frames 60]

Per size, the source clip's first frame is the still source. ``engine`` rows time the per-frame
work alone on frames tracked beforehand: still = ``engine.render``; video = ``frame_source`` +
``engine.follow_source`` + ``engine.render``. ``render`` rows run the whole command
(``render_file`` / ``render_source_video``, decode + track + render + encode, ``--duration``);
the video source's row adds its tracking pre-pass (``total_s``). ``prepare`` compares the whole
``prepare_source`` a frame would cost if prepared like a still with ``frame_source``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.source_face import SourceConfig, prepare_source
from facepaint.engine.source_video import frame_source, video_layout
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation.streams import iter_frames
from facepaint.runtime.offline import render_file
from facepaint.runtime.source_video import render_source_video

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
SIZES = {"512x512": "driving/lp_d0.mp4", "1280x720": "extra/lp_s18.mp4"}
DRIVING = "driving/lp_d10.mp4"


def tracked(path: Path, n: int) -> tuple[list[np.ndarray], list]:
    images, faces = [], []
    with contextlib.closing(MediaPipeTracker(TrackerConfig(smoothing=False))) as tracker:
        for i, rgb in zip(range(n), iter_frames(str(path)), strict=False):
            found = tracker.track(np.ascontiguousarray(rgb), 1 + 33 * i)
            images.append(rgb)
            faces.append(found[0] if found else None)
    return images, faces


def engine_fps(src: tuple[list, list], drv: tuple[list, list], video: bool) -> float:
    with contextlib.closing(MediaPipeTracker(TrackerConfig())) as tracker:
        base_face = tracker.track(src[0][0], None)[0]
    with ReenactmentEngine(EngineConfig(), src[0][0], base_face, neutral=drv[1][0]) as engine:
        layout = video_layout(engine.source)
        start = time.perf_counter()
        for i, (image, face) in enumerate(zip(*src, strict=True)):
            if video and face is not None:
                engine.follow_source(frame_source(layout, image, face))
            engine.render(drv[0][i], drv[1][i], i / 30)
        return len(src[0]) / (time.perf_counter() - start)


def prepare_ms(src: tuple[list, list]) -> tuple[float, float]:
    """Mean ms of the full ``prepare_source`` and of ``frame_source`` over the tracked frames."""
    pairs = [(im, f) for im, f in zip(*src, strict=True) if f is not None]
    layout = video_layout(prepare_source(*pairs[0], SourceConfig()))
    start = time.perf_counter()
    for im, f in pairs[:10]:
        prepare_source(im, f, SourceConfig())
    full = (time.perf_counter() - start) / min(10, len(pairs))
    start = time.perf_counter()
    for im, f in pairs:
        frame_source(layout, im, f)
    return 1000 * full, 1000 * (time.perf_counter() - start) / len(pairs)


def render_fps(source: str, seconds: float, video: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = build_app_config({"source": source, "driving": str(MEDIA / DRIVING), "output": f"{tmp}/o.mp4",
                                   "duration": seconds, "progress": False})
        start = time.perf_counter()
        stats = render_source_video(config) if video else render_file(config)
        return float(stats["fps"]), time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    args = p.parse_args()
    drv = tracked(MEDIA / DRIVING, args.frames)
    for size, clip in SIZES.items():
        src = tracked(MEDIA / clip, args.frames)
        with tempfile.TemporaryDirectory() as tmp:
            still = f"{tmp}/still.png"
            cv2.imwrite(still, src[0][0][:, :, ::-1])
            e_still, e_video = engine_fps(src, drv, False), engine_fps(src, drv, True)
            full_ms, frame_ms = prepare_ms(src)
            r_still, t_still = render_fps(still, args.frames / 30, False)
            r_video, t_video = render_fps(str(MEDIA / clip), args.frames / 30, True)
        print(f"{size}: prepare_source {full_ms:.1f} ms, frame_source {frame_ms:.1f} ms per frame")
        print(f"{size}: engine fps still {e_still:.1f}, video {e_video:.1f}; render fps still {r_still:.1f} "
              f"(total {t_still:.1f} s), video {r_video:.1f} (total {t_video:.1f} s with the source pre-pass)")


if __name__ == "__main__":
    main()
