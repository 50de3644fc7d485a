"""The training cache, the one every model trains from: every clip tracked once, cut into
face-aligned square crops (the generator's) and into a few crops of one still box (the mixer's).

Layout of a cache folder (``CACHE_VERSION`` 2)::

    manifest.json      {"version": 2, "size": 128, "settings": {...}, "settings_hash": "<sha256>",
                        "clips": [{"name": "fomm_00", "file": "fomm_00.npz", "source": "fomm_00.mp4",
                                   "source_bytes": 123, "frames": 130, "video_frames": 264,
                                   "stride": 2, "fps": 30.0, "lost": 0}, ...]}
    <clip>.npz         one per clip (numpy ``savez_compressed``, no pickled objects):
        jpeg           uint8 (total,)      the crops' JPEG files, concatenated
        offsets        int64 (n + 1,)      crop i is jpeg[offsets[i]:offsets[i + 1]] (RGB once decoded)
        landmarks      float32 (n, 478, 3) MediaPipe mesh in frame pixels (x right, y down; z depth
                                           in the same pixel scale, smaller is nearer the camera)
        blendshapes    float32 (n, 52)     MediaPipe blendshapes, ``engine.track.BLENDSHAPE_NAMES`` order
        au             float32 (n, 20)     FACEGAN vector: 17 AUs (``engine.track.AU_NAMES``) + yaw, pitch, roll
        rotation       float32 (n, 3)      yaw, pitch, roll in degrees (``FaceTrack.rotation``)
        translation    float32 (n, 3)      head translation, tracker units (``FaceTrack.translation``)
        frame_index    int32 (n,)          index of the frame in the video (decoded order)
        time_s         float32 (n,)        frame time in seconds
        affine         float32 (n, 2, 3)   frame pixels -> crop pixels (the per-frame crop)
        frame_size     int32 (2,)          video width, height
        crops          uint8 (k, S, S, 3)  ``still_crops`` frames cut to one fixed square box per clip
                                           (the camera does not move, so the box shows the same
                                           background) and resized to ``still_size``
        crop_index     int32 (k,)          row of each of those crops in ``landmarks``
        crop_box       float32 (4,)        (x0, y0, x1, y1) of the box in frame pixels (it may extend
                                           past the frame: black padding)

Crops are ``size`` squares placed by ``facepaint.engine.neural.align`` (FFHQ alignment) with the
alignment smoothed over time (Gaussian, ``smooth_s``), so head motion stays in the crops as it
does at inference, where the crop is fixed by the source portrait. Frames are taken every
``stride`` frames, ``stride`` at least ``min_stride`` and large enough to keep at most
``max_frames`` per clip spread over the whole clip. Frames without a face are left out. The
aligned crops move with the head and so cannot show a still background: the mixer learns from the
still-box crops instead (version 1 kept those in a second cache of its own).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facepaint.engine.errors import InputError
from facepaint.engine.neural.align import align_matrix, align_params, apply_affine, warp_to_square

CACHE_VERSION = 2
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# Pass 1 keeps a loose crop per frame (this size, this much wider than the aligned square) so the
# video is decoded once; pass 2 cuts the smoothed square out of it.
_LOOSE_SIZE = 256
_LOOSE_GROW = 1.6


@dataclass(frozen=True)
class CacheSettings:
    """How clips are cut into the cache.

    Attributes:
        size: Side of the square crops in pixels.
        min_stride: Take at most every ``min_stride``-th frame.
        max_frames: Most frames kept per clip.
        quality: JPEG quality of the crops.
        smooth_s: Gaussian sigma (seconds) of the crop alignment over time.
        still_crops: Frames per clip also cut to the clip's still box (the mixer's crops).
        still_size: Side of the still-box crops in pixels.
        still_margin: Still-box margin around the clip's median face box, in face sizes.
    """

    size: int = 128
    min_stride: int = 2
    max_frames: int = 150
    quality: int = 90
    smooth_s: float = 1.0
    still_crops: int = 24
    still_size: int = 128
    still_margin: float = 0.7

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 512 or self.min_stride < 1 or self.max_frames < 2:
            raise ValueError("size must be in [32, 512], min_stride >= 1 and max_frames >= 2")
        if not 50 <= self.quality <= 100 or self.smooth_s < 0:
            raise ValueError("quality must be in [50, 100] and smooth_s >= 0")
        if not 0 <= self.still_crops <= self.max_frames or self.still_size < 32 or self.still_margin < 0:
            raise ValueError("need 0 <= still_crops <= max_frames, still_size >= 32 and still_margin >= 0")

    def digest(self) -> str:
        """sha256 of the settings and the cache version."""
        text = json.dumps({"version": CACHE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class CachedClip:
    """One clip read back from the cache (crops decoded).

    Attributes:
        name: Clip name (file stem).
        crops: (n, size, size, 3) uint8 RGB, face-aligned.
        landmarks: (n, 478, 3) float32 in aligned-crop pixels.
        frame_landmarks: (n, 478, 3) float32 in frame pixels (as tracked).
        blendshapes: (n, 52) float32.
        au: (n, 20) float32.
        rotation: (n, 3) float32.
        time_s: (n,) float32.
        still_crops: (k, S, S, 3) uint8 RGB, all cut from one still box.
        still_index: (k,) int: row of each still crop in ``frame_landmarks``.
        still_box: (4,) float32: the still box in frame pixels.
    """

    name: str
    crops: np.ndarray
    landmarks: np.ndarray
    frame_landmarks: np.ndarray
    blendshapes: np.ndarray
    au: np.ndarray
    rotation: np.ndarray
    time_s: np.ndarray
    still_crops: np.ndarray
    still_index: np.ndarray
    still_box: np.ndarray

    def still_landmarks(self) -> np.ndarray:
        """(k, 478, 3) landmarks of the still crops, in still-crop pixels."""
        return crop_landmarks(self.frame_landmarks[self.still_index], self.still_box, self.still_crops.shape[1])


def is_cache(path: Path) -> bool:
    """True when ``path`` is a cache folder (it holds a manifest.json)."""
    return (Path(path) / "manifest.json").is_file()


def clip_files(folder: Path) -> list[Path]:
    """The video files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def build_cache(clips: Path, out: Path, settings: CacheSettings, tracker_factory: Callable[[], Any],
                progress: Callable[[str], None] | None = None) -> dict:
    """Track and crop every clip of ``clips`` into ``out``; clips already there with the same
    settings and source size are kept.

    Args:
        clips: Folder of video files.
        out: Cache folder (created).
        settings: Crop settings.
        tracker_factory: Returns a fresh tracker (``track(image, timestamp_ms)``, ``close()``).
        progress: Called with one line per clip.

    Returns:
        The manifest written.

    Raises:
        InputError: When ``clips`` holds no video.
    """
    files = clip_files(clips)
    if not files:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {clips}")
    out.mkdir(parents=True, exist_ok=True)
    digest = settings.digest()
    old = _read_manifest(out)
    known = {c["name"]: c for c in old.get("clips", [])} if old.get("settings_hash") == digest else {}
    entries = []
    for path in files:
        entry = known.get(path.stem)
        if entry is None or entry["source_bytes"] != path.stat().st_size or not (out / entry["file"]).is_file():
            tracker = tracker_factory()
            try:
                entry = cache_clip(path, out, settings, tracker)
            finally:
                tracker.close()
        entries.append(entry)
        if progress is not None:
            progress(f"{path.name}: {entry['frames']} frames (stride {entry['stride']}, {entry['lost']} lost)")
        manifest = {"version": CACHE_VERSION, "size": settings.size, "settings": dataclasses.asdict(settings),
                    "settings_hash": digest, "clips": entries}
        _write_json(out / "manifest.json", manifest)
    return manifest


def cache_clip(path: Path, out: Path, settings: CacheSettings, tracker) -> dict:
    """Track one clip and write ``out/<stem>.npz``; returns its manifest entry."""
    from facepaint.plugins.sources.video import VideoSource

    with VideoSource(path) as video:
        total = video.frame_count or 0
        stride = max(settings.min_stride, math.ceil(total / settings.max_frames)) if total else settings.min_stride
        rows, lost = _track_loose(video, tracker, stride, settings.max_frames)
        fps = video.fps
        frame_size = np.array(video.size, np.int32)
    if rows:
        arrays = _final_crops(rows, settings)
        arrays["frame_size"] = frame_size
        arrays.update(_still_crops(path, rows, settings))
        np.savez_compressed(out / f"{path.stem}.npz", **arrays)
    return {"name": path.stem, "file": f"{path.stem}.npz", "source": path.name,
            "source_bytes": path.stat().st_size, "frames": len(rows), "video_frames": total,
            "stride": stride, "fps": fps, "lost": lost}


def _track_loose(video, tracker, stride: int, limit: int) -> tuple[list[dict], int]:
    """Pass 1: track every ``stride``-th frame; keep a loose crop around each face found."""
    rows: list[dict] = []
    lost = 0
    for frame in video:
        if frame.index % stride or len(rows) >= limit:
            continue
        faces = tracker.track(frame.image, int(round(frame.pts * 1000)))
        if not faces:
            lost += 1
            continue
        face = faces[0]
        params = align_params(face.landmarks)
        loose = params.copy()
        loose[2:] *= _LOOSE_GROW
        m = align_matrix(loose, _LOOSE_SIZE)
        crop = warp_to_square(frame.image, m, _LOOSE_SIZE)
        rows.append({"crop": crop, "loose": m, "params": params, "face": face,
                     "index": frame.index, "time": frame.pts})
    return rows, lost


def _final_crops(rows: list[dict], settings: CacheSettings) -> dict[str, Any]:
    """Pass 2: smooth the alignment over time and cut the final crops out of the loose ones."""
    times = np.array([r["time"] for r in rows])
    params = _smooth(np.stack([r["params"] for r in rows]), times, settings.smooth_s)
    jpegs, affines = [], []
    size = settings.size
    for row, p in zip(rows, params, strict=True):
        final = align_matrix(p, size)
        # final @ inverse(loose): loose-crop pixels -> final-crop pixels.
        loose_inv = cv2.invertAffineTransform(row["loose"])
        shift = final[:, :2] @ loose_inv[:, 2] + final[:, 2]
        m = np.concatenate([final[:, :2] @ loose_inv[:, :2], shift[:, None]], 1)
        crop = cv2.warpAffine(row["crop"], m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT_101)
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, settings.quality])
        if not ok:
            raise InputError("JPEG encoding of a crop failed")
        jpegs.append(buf.reshape(-1))
        affines.append(final)
    faces = [r["face"] for r in rows]
    offsets = np.concatenate([[0], np.cumsum([len(j) for j in jpegs])]).astype(np.int64)
    return {
        "jpeg": np.concatenate(jpegs).astype(np.uint8), "offsets": offsets,
        "landmarks": np.stack([f.landmarks for f in faces]).astype(np.float32),
        "blendshapes": np.stack([f.blendshapes for f in faces]).astype(np.float32),
        "au": np.stack([f.au for f in faces]).astype(np.float32),
        "rotation": np.stack([f.rotation for f in faces]).astype(np.float32),
        "translation": np.stack([f.translation for f in faces]).astype(np.float32),
        "frame_index": np.array([r["index"] for r in rows], np.int32),
        "time_s": times.astype(np.float32), "affine": np.stack(affines).astype(np.float32),
    }


def _still_crops(path: Path, rows: list[dict], settings: CacheSettings) -> dict[str, np.ndarray]:
    """Pass 3: ``still_crops`` tracked frames, evenly spread, cut to the clip's still box (the
    video is decoded again: the box needs every frame's landmarks, and pass 1 keeps no full frames)."""
    from facepaint.plugins.sources.video import VideoSource

    lm = np.stack([r["face"].landmarks for r in rows]).astype(np.float32)
    keep = np.unique(np.linspace(0, len(rows) - 1, settings.still_crops).round()).astype(int)
    box = _clip_box(lm, settings.still_margin)
    want = {rows[k]["index"]: n for n, k in enumerate(keep)}
    crops = np.zeros((len(keep), settings.still_size, settings.still_size, 3), np.uint8)
    with VideoSource(path) as video:
        for frame in video:
            if frame.index in want:
                crops[want[frame.index]] = _cut(frame.image, box, settings.still_size)
    return {"crops": crops, "crop_index": keep.astype(np.int32), "crop_box": np.asarray(box, np.float32)}


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


def _smooth(params: np.ndarray, times: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted average of ``params`` over time (each row by its neighbours in time)."""
    if sigma <= 0 or len(params) < 2:
        return params
    w = np.exp(-0.5 * ((times[:, None] - times[None, :]) / sigma) ** 2)
    return (w @ params) / w.sum(1, keepdims=True)


def load_clip(folder: Path, entry: dict) -> CachedClip:
    """One clip of a cache, crops decoded to RGB."""
    with np.load(Path(folder) / entry["file"], allow_pickle=False) as z:
        jpeg, offsets = z["jpeg"], z["offsets"]
        crops = np.stack([_decode(jpeg[offsets[i]:offsets[i + 1]], entry["name"]) for i in range(len(offsets) - 1)])
        frame_lm = z["landmarks"]
        aligned = np.stack([apply_affine(m, p) for m, p in zip(z["affine"], frame_lm, strict=True)])
        return CachedClip(name=entry["name"], crops=crops, landmarks=aligned.astype(np.float32),
                          frame_landmarks=frame_lm, blendshapes=z["blendshapes"], au=z["au"],
                          rotation=z["rotation"], time_s=z["time_s"], still_crops=z["crops"],
                          still_index=z["crop_index"].astype(np.int64), still_box=z["crop_box"])


def _decode(data: np.ndarray, name: str) -> np.ndarray:
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"a crop of {name} in the cache cannot be decoded; rebuild the cache")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_cache(folder: Path, min_frames: int = 2) -> tuple[dict, list[CachedClip]]:
    """The manifest and every clip with at least ``min_frames`` frames.

    Raises:
        InputError: When ``folder`` is not a cache or holds no usable clip.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if not manifest:
        raise InputError(f"{folder} is not a training cache (no manifest.json); pass a folder of clips to build one")
    if manifest.get("version") != CACHE_VERSION:
        raise InputError(f"cache {folder} has version {manifest.get('version')}, expected {CACHE_VERSION}; rebuild it")
    clips = [load_clip(folder, e) for e in manifest["clips"] if e["frames"] >= min_frames]
    if not clips:
        raise InputError(f"cache {folder} holds no clip with {min_frames} or more tracked frames")
    return manifest, clips


def _read_manifest(folder: Path) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
