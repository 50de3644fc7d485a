"""Where the self-reenactment error of the geometric default comes from, on the held-out clips.

    python bench/self_bounds.py [--clips N] [--max-frames 60] [--every 4]

Same protocol as ``bench/neural_eval.py`` (source = a clip's first frame with a face, every
``every``-th later frame judged; face-region L1 against the real frame), for:

- ``first rendered``: the engine left to take its neutral from the first frame it renders (the
  protocol before 2026-11-24, session 3), so that frame's offset from the source is in every frame;
- ``source neutral``: calibrated on the source frame's face (the protocol now);
- ``oracle targets``: the driving frame's own landmarks as the target shape (head ring moved
  rigidly with them): what a perfect landmark transformer would give the geometric renderer;
- ``colour shift``: the output shifted by the mean residual over the face (one colour change);
- ``correction at S px``: the true residual (real frame - output) carried into the driving face's
  aligned square at S px and back, added to the output: the best any correction made at S px
  (the generator works at 128) could do.

Prints per-clip face L1 and the means with their ratio to ``source neutral``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.geometry import similarity_apply, umeyama
from facepaint.engine.landmark_transformer import TargetShape
from facepaint.engine.neural.align import align_matrix, align_params
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.plugins.sources.video import VideoSource
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
from facepaint.runtime.evaluation.regions import face_hull, hull_mask, region_scores
from facepaint.runtime.training.cache import clip_files

ROOT = Path(__file__).resolve().parents[1]
SIZES = (64, 128, 256)


class OracleTransformer:
    """The engine's transformer with the target landmarks replaced by the driving face's own."""

    def __init__(self, base, source) -> None:
        self.base, self.source, self.models = base, source, ()

    def __getattr__(self, name: str):
        return getattr(self.base, name)

    def transform(self, face) -> TargetShape:
        lids = self.base.transform(face).eye_closure
        lm = np.asarray(face.landmarks, np.float64).copy()
        lm[:, :2] -= np.asarray(self.source.origin, np.float64)
        stable = self.source.topology.stable
        s, r, t = umeyama(self.source.landmarks[stable], lm[stable])
        return TargetShape(lm, similarity_apply(self.source.anchors, s, r, t), lids)


def corrected(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """``out`` plus the true residual as a ``size``-px correction in the face-aligned square."""
    h, w = real.shape[:2]
    params = align_params(landmarks)
    residual = real.astype(np.float32) - out.astype(np.float32)
    fine = cv2.warpAffine(residual, align_matrix(params, 1024), (1024, 1024), flags=cv2.INTER_LINEAR)
    square = cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)
    back_flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    matrix = align_matrix(params, size)
    back = cv2.warpAffine(square, matrix, (w, h), flags=back_flags)
    inside = cv2.warpAffine(np.ones((size, size), np.float32), matrix, (w, h), flags=back_flags)
    return np.clip(out + back * inside[..., None], 0, 255).astype(np.uint8)


def face_l1(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> float:
    """The face-region L1 of ``region_scores`` (without its SSIM, which nothing here reads)."""
    return region_scores(out, real, landmarks, with_ssim=False)["face_l1"]


def colour_shifted(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``out`` shifted by the mean residual (per channel) over the real face's oval: how much of
    the error is one colour change of the whole face (exposure, white balance, light)."""
    inside = hull_mask(face_hull(landmarks), real.shape[:2])
    shift = (real[inside].astype(np.float32) - out[inside].astype(np.float32)).mean(0)
    return np.clip(out + shift, 0, 255).astype(np.uint8)


def judge_clip(clip: Path, every: int, max_frames: int) -> dict[str, float] | None:
    """Mean face L1 per setting over one clip's judged frames (None: no face at the start)."""
    rows: dict[str, list[float]] = {}
    engines: dict[str, ReenactmentEngine] = {}
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker, VideoSource(clip) as video:
        for frame in video:
            if frame.index >= max_frames:
                break
            faces = tracker.track(frame.image, int(round(frame.pts * 1000)))
            face = faces[0] if faces else None
            if not engines:
                if face is not None:
                    engines = {name: ReenactmentEngine(EngineConfig(), frame.image, face)
                               for name in ("first rendered", "source neutral", "oracle targets")}
                    engines["source neutral"].calibrate(face)
                    oracle = engines["oracle targets"]
                    oracle.calibrate(face)
                    oracle.transformer = OracleTransformer(oracle.transformer, oracle.source)
                continue
            if face is None or frame.index % every:
                continue
            for name, engine in engines.items():
                out = engine.render(frame.image, face, frame.pts)
                rows.setdefault(name, []).append(face_l1(out, frame.image, face.landmarks))
                if name == "source neutral":
                    shifted = colour_shifted(out, frame.image, face.landmarks)
                    rows.setdefault("colour shift", []).append(
                        face_l1(shifted, frame.image, face.landmarks))
                    for size in SIZES:
                        fixed = corrected(out, frame.image, face.landmarks, size)
                        rows.setdefault(f"correction at {size} px", []).append(
                            face_l1(fixed, frame.image, face.landmarks))
    for engine in engines.values():
        engine.close()
    return {name: float(np.mean(v)) for name, v in rows.items()} if rows else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "validate"))
    p.add_argument("--clips", type=int, help="only the first N clips")
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--max-frames", type=int, default=60)
    args = p.parse_args()
    totals: dict[str, list[float]] = {}
    for clip in clip_files(Path(args.media))[: args.clips]:
        means = judge_clip(clip, args.every, args.max_frames)
        if means is None:
            print(f"{clip.stem[:28]:28s} no face in the first frames", flush=True)
            continue
        if not totals:
            print(f"{'clip':28s} " + "  ".join(means))
        for name, value in means.items():
            totals.setdefault(name, []).append(value)
        print(f"{clip.stem[:28]:28s} " + "  ".join(f"{v:.4f}" for v in means.values()), flush=True)
    base = float(np.mean(totals["source neutral"]))
    print(f"face-region L1, mean over {len(totals['source neutral'])} clips:")
    for name, values in totals.items():
        print(f"  {name:20s} {np.mean(values):.4f}  ({np.mean(values) / base:.3f}x source neutral)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
