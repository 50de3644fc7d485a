"""Landmark and background cache for the landmark transformer and the background mixer.

Each clip of a folder is tracked once (MediaPipe, no smoothing) and written to
``<out>/<clip stem>.npz`` with:

* ``landmarks`` (T, 478, 3) float32: frame pixels, z in the same scale (``FaceTrack.landmarks``);
* ``au`` (T, 20) float32 (``FaceTrack.au``), ``blendshapes`` (T, 52), ``rotation`` (T, 3);
* ``frame`` (T,) int32: index of each tracked frame in the clip (frames are sampled evenly);
* ``crops`` (K, S, S, 3) uint8: K of those frames cut to one fixed square box per clip (the
  camera does not move, so the same box shows the same background) and resized to S;
* ``crop_index`` (K,) int32: row of each crop in ``landmarks``; ``crop_box`` (4,) float32:
  (x0, y0, x1, y1) of the box in frame pixels (it may extend past the frame: black padding).

The cache of the ``neural`` branch keeps face-aligned crops, which move with the head and so cannot
show a still background; this one keeps the camera's own framing for the mixer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.errors import InputError


@dataclass(frozen=True)
class ClipCacheConfig:
    """How clips are sampled into the cache.

    Attributes:
        max_frames: Most tracked frames per clip (sampled evenly over the clip).
        crops: Frames per clip kept as fixed-box crops for the mixer.
        crop_size: Side of the crops in pixels.
        margin: Box margin around the clip's median face box, in face sizes.
    """

    max_frames: int = 150
    crops: int = 24
    crop_size: int = 128
    margin: float = 0.7

    def __post_init__(self) -> None:
        if self.max_frames < 2 or not 0 <= self.crops <= self.max_frames or self.crop_size < 32:
            raise ValueError("need max_frames >= 2, 0 <= crops <= max_frames, crop_size >= 32")


def build_clip_cache(clips: Path, out: Path, config: ClipCacheConfig = ClipCacheConfig()) -> list[Path]:
    """Track every ``*.mp4`` in ``clips`` and write one ``.npz`` per clip to ``out``.

    Clips already in ``out`` are kept (the build resumes). Clips with fewer than two tracked
    frames are skipped.

    Returns:
        The cache files, existing and new.

    Raises:
        InputError: If ``clips`` holds no ``.mp4``.
    """
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    videos = sorted(Path(clips).glob("*.mp4"))
    if not videos:
        raise InputError(f"no .mp4 clips in {clips}")
    out.mkdir(parents=True, exist_ok=True)
    done = []
    with MediaPipeTracker(TrackerConfig(smoothing=False, max_faces=1)) as tracker:
        for video in videos:
            path = out / f"{video.stem}.npz"
            if not path.exists():
                tracker.reset()
                record = _track_clip(video, tracker, config)
                if record is None:
                    continue
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, **record)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
                tmp.replace(path)
            done.append(path)
    return done


def _sampled_frames(video: Path, max_frames: int):
    """Yield (index, fps, RGB frame) for frames spread evenly over the clip."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        total = stream.frames or int(float(stream.duration * stream.time_base) * fps if stream.duration else 0)
        stride = max(1, total // max_frames) if total else 1
        for i, frame in enumerate(container.decode(stream)):
            if i % stride == 0:
                yield i, fps, frame.to_ndarray(format="rgb24")


def _track_clip(video: Path, tracker, config: ClipCacheConfig) -> dict[str, np.ndarray] | None:
    rows, frames = [], {}
    for i, fps, rgb in _sampled_frames(video, config.max_frames):
        faces = tracker.track(rgb, int(round(i * 1000.0 / fps)))
        if not faces:
            continue
        f = faces[0]
        rows.append((i, f.landmarks, f.au, f.blendshapes, f.rotation))
        frames[len(rows) - 1] = rgb
        if len(rows) >= config.max_frames:
            break
    if len(rows) < 2:
        return None
    lm = np.stack([r[1] for r in rows]).astype(np.float32)
    keep: list[int] = np.unique(np.linspace(0, len(rows) - 1, config.crops).round()).astype(int).tolist()
    box = _clip_box(lm, config.margin)
    side = config.crop_size
    crops = np.zeros((len(keep), side, side, 3), np.uint8)
    for n, k in enumerate(keep):
        crops[n] = _cut(frames[int(k)], box, side)
    return {
        "landmarks": lm,
        "au": np.stack([r[2] for r in rows]).astype(np.float32),
        "blendshapes": np.stack([r[3] for r in rows]).astype(np.float32),
        "rotation": np.stack([r[4] for r in rows]).astype(np.float32),
        "frame": np.asarray([r[0] for r in rows], np.int32),
        "crops": crops,
        "crop_index": np.asarray(keep, np.int32),
        "crop_box": np.asarray(box, np.float32),
    }


def _clip_box(lm: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Square box around the clip's median face, grown by ``margin`` face sizes each side."""
    lo = np.median(lm[:, :, :2].min(1), axis=0)
    hi = np.median(lm[:, :, :2].max(1), axis=0)
    size = float((hi - lo).max()) * (1.0 + 2.0 * margin)
    cx, cy = 0.5 * (lo + hi)
    # The hair sits above the landmarks: centre the box a little higher than the face.
    cy -= 0.1 * float(hi[1] - lo[1])
    x0, y0 = float(np.floor(cx - size / 2)), float(np.floor(cy - size / 2))
    side = float(np.ceil(size))
    return x0, y0, x0 + side, y0 + side


def _cut(rgb: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """``box`` of ``rgb`` resampled to ``size``², black beyond the frame."""
    h, w = rgb.shape[:2]
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    side = int(np.ceil(box[2] - box[0]))
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT) if pad else rgb
    window = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)


def crop_landmarks(lm: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Landmarks (..., 3) from frame pixels to the pixels of a ``size``² crop of ``box``."""
    s = size / float(box[2] - box[0])
    out = np.array(lm, np.float32, copy=True)
    out[..., 0] = (out[..., 0] - box[0]) * s
    out[..., 1] = (out[..., 1] - box[1]) * s
    out[..., 2] *= s
    return out
