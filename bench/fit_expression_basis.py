"""Fit the expression basis: how each blendshape moves the 478 landmarks, learnt from tracked clips.

For every clip the calmest, most frontal face (``choose_reference``) is its neutral. Every other
face is aligned onto it by a similarity on the skull points (pose removed), and its displacement
from the neutral, turned into a shared template's frame and face-width units, is regressed
(ridge) on its blendshapes minus the neutral's. The result, one (478, 3) displacement field per
blendshape, is written with the template to ``engine/data/expression_basis_v1.npz``; print the
sha256 it reports into ``facepaint.engine.expression.BASIS_SHA256``.

    python bench/fit_expression_basis.py                       # train/ + extra/, every 2nd frame
    python bench/fit_expression_basis.py --cache /tmp/tracks   # keep the tracking between runs
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facepaint.engine.geometry import similarity_apply, umeyama
from facepaint.engine.reference import choose_reference
from facepaint.engine.topology import get_topology
from facepaint.engine.track import BLENDSHAPE_NAMES, FaceTrack

VERSION = 1
# Blendshapes the basis models: every expression channel (gaze ones included: they move the irises).
NAMES = BLENDSHAPE_NAMES[1:]
RIDGE = 1.0  # in squared blendshape units summed over frames: keeps rarely seen channels from blowing up
# float16 (about 1e-3 relative) is far finer than the fit; it halves the file in the wheel.
TOPOLOGY = get_topology("mediapipe478")

ROOT = Path(__file__).resolve().parents[1]


def track_clip(path: Path, stride: int) -> dict[str, np.ndarray]:
    """Landmarks, blendshapes and rotation of every ``stride``-th frame with a face."""
    from facepaint.plugins.base import load_plugin
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.runtime.evaluation.streams import iter_frames, video_rate

    step = 1000.0 / float(video_rate(str(path)))
    tracker = load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False, max_faces=1))
    lm, bs, rot = [], [], []
    try:
        for i, rgb in enumerate(iter_frames(str(path))):
            if i % stride:
                continue
            found = tracker.track(rgb, round(i * step))
            if found:
                lm.append(found[0].landmarks)
                bs.append(found[0].blendshapes)
                rot.append(found[0].rotation)
    finally:
        tracker.close()
    return {"lm": np.array(lm, np.float32), "bs": np.array(bs, np.float32), "rot": np.array(rot, np.float32)}


def load_clips(paths: Sequence[Path], stride: int, cache: Path | None) -> dict[str, dict[str, np.ndarray]]:
    clips = {}
    for path in paths:
        key = f"{path.parent.name}_{path.stem}"
        hit = cache / f"{key}.npz" if cache is not None else None
        if hit is not None and hit.is_file():
            clips[key] = dict(np.load(hit))
            continue
        clips[key] = track_clip(path, stride)
        if hit is not None:
            np.savez_compressed(hit, **clips[key])
        print(f"tracked {key}: {len(clips[key]['lm'])} faces", file=sys.stderr, flush=True)
    return {k: v for k, v in clips.items() if len(v["lm"]) >= 20}


def neutral_index(clip: dict[str, np.ndarray]) -> int:
    faces = [FaceTrack(lm, bs, rot, np.zeros(3), np.zeros(20), "mediapipe478", (1, 1))
             for lm, bs, rot in zip(clip["lm"], clip["bs"], clip["rot"], strict=True)]
    return choose_reference(faces)


def face_width(lm: np.ndarray) -> float:
    """Outer eye corners' distance times 2 (``SourceFace.face_width``)."""
    return 2.0 * float(np.linalg.norm(lm[33, :2] - lm[263, :2]))


def template_from(neutrals: list[np.ndarray]) -> np.ndarray:
    """Generalised Procrustes mean of the clips' neutral faces, centred, unit face width."""
    template = neutrals[0] - neutrals[0].mean(0)
    template /= face_width(template)
    for _ in range(3):
        aligned = [similarity_apply(n, *umeyama(n, template)) for n in neutrals]
        template = np.mean(aligned, axis=0)
        template = (template - template.mean(0)) / face_width(template)
    return template


def displacements(clip: dict[str, np.ndarray], n: int, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478*3) pose-free displacements from the neutral in template units, (T, K) blendshape deltas."""
    st = TOPOLOGY.stable
    lm = clip["lm"].astype(np.float64)
    neutral = lm[n]
    s_n, r_n, _ = umeyama(neutral[st], template[st])
    rows = []
    for face in lm:
        aligned = similarity_apply(face, *umeyama(face[st], neutral[st]))
        rows.append((s_n * (aligned - neutral) @ r_n.T).ravel())
    bs = clip["bs"].astype(np.float64)[:, 1:]
    return np.array(rows), bs - bs[n]


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge solution ``B`` of ``y ≈ x @ B``."""
    return np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ y)


def r2(x: np.ndarray, y: np.ndarray, basis: np.ndarray) -> float:
    """Share of the displacement variance the basis explains."""
    resid = y - x @ basis
    return 1.0 - float((resid ** 2).sum() / max(((y - y.mean(0)) ** 2).sum(), 1e-12))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    p.add_argument("--folders", default="train,extra", help="media folders whose clips are fitted")
    p.add_argument("--stride", type=int, default=2, help="track every n-th frame")
    p.add_argument("--cache", type=Path, help="folder keeping each clip's tracking (npz)")
    p.add_argument("--out", type=Path, default=ROOT / "engine" / "data" / f"expression_basis_v{VERSION}.npz")
    args = p.parse_args(argv)
    paths = sorted(q for f in args.folders.split(",") for q in (args.media / f).glob("*.mp4"))
    clips = load_clips(paths, args.stride, args.cache)
    keys = sorted(clips)
    neutrals = {k: neutral_index(clips[k]) for k in keys}
    template = template_from([clips[k]["lm"][neutrals[k]].astype(np.float64) for k in keys])
    data = {k: displacements(clips[k], neutrals[k], template) for k in keys}
    held = keys[::5]  # every 5th clip checks the fit on people it did not see
    train = [k for k in keys if k not in held]
    stack = lambda ks: (np.concatenate([data[k][1] for k in ks]), np.concatenate([data[k][0] for k in ks]))  # noqa: E731
    x_tr, y_tr = stack(train)
    x_ho, y_ho = stack(held)
    check = fit(x_tr, y_tr)
    print(f"{len(keys)} clips, {len(x_tr) + len(x_ho)} faces; R^2 on {len(held)} held-out clips "
          f"{r2(x_ho, y_ho, check):.3f} (train {r2(x_tr, y_tr, check):.3f})")
    x_all, y_all = stack(keys)
    basis = fit(x_all, y_all).reshape(len(NAMES), -1, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, version=np.int64(VERSION), names=np.array(NAMES),
                        basis=basis.astype(np.float16), template=template.astype(np.float32),
                        clips=np.array(keys), r2_held_out=np.float64(r2(x_ho, y_ho, check)))
    print(f"wrote {args.out} sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
