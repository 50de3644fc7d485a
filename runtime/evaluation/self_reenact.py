"""Self-reenactment of held-out clips with the geometric and the neural reenactor in one run.

Source = the first frame of a clip with a face; every later frame is ground truth. That frame's
face is also the driving neutral (FOMM's protocol: motion is measured from the frame the source
is), so the figures judge the renderer rather than the choice of neutral; left to pick its own
(the first rendered frame), the engine carried that frame's expression offset into every later
frame, and both engines' face L1 rose by a third (0.031 -> 0.042, 24 validate/ clips). Both
engines get the same tracked faces (MediaPipe video mode, no smoothing) and render in process
(no video encoding). Per judged frame, against the real frame: L1 ([0, 1] scale), PSNR and SSIM
(``runtime.evaluation.metrics``) over the face region (the real frame's face-oval hull for L1,
its bounding box for PSNR/SSIM) and the mouth region (the box ``source_face.mouth_region`` puts
around the real lips), plus whole-frame L1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.stages import ModelConfig
from facepaint.runtime.evaluation.metrics import l1
from facepaint.runtime.evaluation.regions import region_scores

KEYS = ("face_l1", "mouth_l1", "face_psnr", "mouth_psnr", "face_ssim", "mouth_ssim", "frame_l1")


def engines(image: np.ndarray, face, weights: str | None) -> dict[str, ReenactmentEngine]:
    """{"geometric": default engine, "neural": the same with the neural reenactor}."""
    neural = dataclasses.replace(EngineConfig(), reenactor=dataclasses.replace(EngineConfig().reenactor, kind="neural"),
                                 model=ModelConfig(weights=weights))
    return {"geometric": ReenactmentEngine(EngineConfig(), image, face),
            "neural": ReenactmentEngine(neural, image, face)}


def region_figures(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """The ``KEYS`` figures of one output frame against the real one (landmarks of the real one)."""
    return {**region_scores(out, real, landmarks), "frame_l1": l1(out, real)}


def self_reenact(clip: Path, tracker, weights: str | None, every: int = 3, max_frames: int = 90) -> dict:
    """Per-engine mean ``KEYS`` over the judged frames of one clip (``frames`` judged; 0 when the
    clip's first frames hold no face)."""
    from facepaint.plugins.sources.video import VideoSource

    pairs: dict[str, list[dict[str, float]]] = {"geometric": [], "neural": []}
    built = None
    with VideoSource(clip) as video:
        for frame in video:
            if frame.index >= max_frames:
                break
            faces = tracker.track(frame.image, int(round(frame.pts * 1000)))
            face = faces[0] if faces else None
            if built is None:
                if face is not None:
                    built = engines(frame.image, face, weights)
                    for eng in built.values():
                        eng.calibrate(face)
                continue
            if face is None or frame.index % every:
                # Unsmoothed tracks and motion relative to the first frame: skipped frames leave
                # nothing behind in the engines, so they are tracked (video mode) but not rendered.
                continue
            for name, eng in built.items():
                out = eng.render(frame.image, face, frame.pts)
                pairs[name].append(region_figures(out, frame.image, face.landmarks))
    if built is not None:
        for eng in built.values():
            eng.close()
    return {name: {k: float(np.mean([r[k] for r in rows])) for k in KEYS} if rows else None
            for name, rows in pairs.items()} | {"frames": len(pairs["neural"])}
