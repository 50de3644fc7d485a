"""Self-reenactment of held-out clips with the geometric and the neural reenactor in one run.

Source = the first frame of a clip with a face; every later frame is ground truth. Both engines
get the same tracked faces (MediaPipe video mode, no smoothing) and render in process (no video
encoding). Per judged frame, against the real frame: L1 ([0, 1] scale), PSNR and SSIM
(``runtime.evaluation.metrics``) over the face region (the real frame's face-oval hull for L1,
its bounding box for PSNR/SSIM) and the mouth region (the box ``source_face.mouth_region`` puts
around the real lips), plus whole-frame L1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.source_face import mouth_region
from facepaint.engine.stages import ModelConfig
from facepaint.engine.topology import get_topology
from facepaint.runtime.evaluation.metrics import l1, psnr, ssim

KEYS = ("face_l1", "mouth_l1", "face_psnr", "mouth_psnr", "face_ssim", "mouth_ssim", "frame_l1")


def engines(image: np.ndarray, face, weights: str | None) -> dict[str, ReenactmentEngine]:
    """{"geometric": default engine, "neural": the same with the neural reenactor}."""
    neural = dataclasses.replace(EngineConfig(), reenactor=dataclasses.replace(EngineConfig().reenactor, kind="neural"),
                                 model=ModelConfig(weights=weights))
    return {"geometric": ReenactmentEngine(EngineConfig(), image, face),
            "neural": ReenactmentEngine(neural, image, face)}


def region_scores(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """The ``KEYS`` figures of one output frame against the real one (landmarks of the real one)."""
    topo = get_topology("mediapipe478")
    h, w = real.shape[:2]
    hull = cv2.convexHull(landmarks[topo.oval, :2].astype(np.float32))[:, 0]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(hull).astype(np.int32)], 1)
    x0, y0 = np.maximum(np.floor(hull.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hull.max(0)).astype(int), (w, h))
    m = mouth_region(landmarks, topo)
    mx0, my0, mx1, my1 = max(m[0], 0), max(m[1], 0), min(m[2], w), min(m[3], h)
    sel = mask.astype(bool)
    face_o, face_r = out[y0:y1, x0:x1], real[y0:y1, x0:x1]
    mouth_o, mouth_r = out[my0:my1, mx0:mx1], real[my0:my1, mx0:mx1]
    return {"face_l1": l1(out[sel], real[sel]), "mouth_l1": l1(mouth_o, mouth_r),
            "face_psnr": psnr(face_o, face_r), "mouth_psnr": psnr(mouth_o, mouth_r),
            "face_ssim": ssim(face_o, face_r), "mouth_ssim": ssim(mouth_o, mouth_r), "frame_l1": l1(out, real)}


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
                continue
            if face is None or frame.index % every:
                # Unsmoothed tracks and motion relative to the first frame: skipped frames leave
                # nothing behind in the engines, so they are tracked (video mode) but not rendered.
                continue
            for name, eng in built.items():
                out = eng.render(frame.image, face, frame.pts)
                pairs[name].append(region_scores(out, frame.image, face.landmarks))
    if built is not None:
        for eng in built.values():
            eng.close()
    return {name: {k: float(np.mean([r[k] for r in rows])) for k in KEYS} if rows else None
            for name, rows in pairs.items()} | {"frames": len(pairs["neural"])}
