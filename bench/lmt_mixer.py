"""Neural landmark transformer and background mixer against their geometric twins: figures + a sheet.

    python bench/lmt_mixer.py --cache /work/cache/lmt/validate [--weights DIR] [--sheet out.png]
        [--parts transformer,mixer,motion,inpaint] [--inpaint-sheet out.png]

The cache is the training cache (``facepaint.runtime.training.cache.build_cache``) of media/validate (people the
shipped weights never saw). ``motion`` renders the Obama portrait driven by lp_d12 (large head
turns) with the old whole-crop paste, the geometric mix and the neural mixer, and writes the
contact sheet (source, driving, old paste, geometric mix, neural transformer + geometric mix,
neural transformer + neural mixer) on an open-mouth and a head-turn frame.

The figures (they judge trained models on the training cache, so they live here rather than in
``runtime.evaluation``, which training does not import and which does not import training):

* ``transformer_figures``: self-reenactment landmark error (source = a clip's first frame, every
  later frame is the truth), identity leak in cross pairs (the output's face shape against the
  source's and the driver's) and AU consistency (the shipped landmark->AU regressor on the output
  against the driver's AUs), for both transformers in both reference modes.
* ``mixer_figures``: background L1 of the mixed crop against the real frame on same-clip pairs.
* ``inpaint_figures``: the same uncovered-background L1 at the cache's own resolution (no net:
  the crops are not shrunk to the mixer's 64 px) for each ``engine.source.inpaint`` method, and its
  seconds per crop; ``inpaint_sheet`` shows the portraits with the person removed by each.
* ``head_motion``: how much the background far from the head changes from frame to frame when
  a portrait follows a head-turning clip, for the old whole-crop paste, the geometric mix and
  the neural mixer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facepaint.engine.background_mixer import MixerConfig
from facepaint.engine.errors import ModelError
from facepaint.engine.landmark_transformer import GeometricLandmarkTransformer, TransformerConfig
from facepaint.engine.neural.background_mixer import composite
from facepaint.engine.neural.landmark_transformer import IBUG, NeuralLandmarkTransformer, to_canonical
from facepaint.engine.neural.model_files import AU_REGRESSOR, MIXER, TRANSFORMER, load_torch, read_tensors
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.source_face import INPAINT_METHODS, SourceConfig, person_layers, prepare_source
from facepaint.engine.stages import ModelConfig
from facepaint.engine.track import FaceTrack
from facepaint.runtime.training.cache import crop_landmarks

# Face-shape points of the 68: upper jaw, nose, eye corners (they carry identity; an expression
# moves the chin, mouth, lids and brows).
SHAPE = IBUG[[0, 1, 2, 3, 13, 14, 15, 16] + list(range(27, 36)) + [36, 39, 42, 45]]
MODES = ("first", "source")


def _faces(rec, rows, box=None, size=None) -> list[FaceTrack]:
    out = []
    for k in rows:
        lm = rec["landmarks"][k] if box is None else crop_landmarks(rec["landmarks"][k], box, size)
        out.append(FaceTrack(lm.astype(np.float32), rec["blendshapes"][k], rec["rotation"][k], np.zeros(3, np.float32),
                             rec["au"][k], "mediapipe478", (1, 1)))
    return out


def _source(rec):
    """The clip's first cached crop as a prepared source, and the crop box/size."""
    box, size = rec["crop_box"], rec["crops"].shape[1]
    face = _faces(rec, [int(rec["crop_index"][0])], box, size)[0]
    return prepare_source(np.ascontiguousarray(rec["crops"][0]), face, SourceConfig()), box, size


def _transformers(source, weights):
    for mode in MODES:
        yield f"geometric/{mode}", GeometricLandmarkTransformer(source, TransformerConfig(reference=mode))
        yield f"neural/{mode}", NeuralLandmarkTransformer(source, TransformerConfig(kind="neural", reference=mode),
                                                           ModelConfig(weights=weights))


def transformer_figures(cache: Path, weights: str | None = None) -> dict[str, dict[str, float]]:
    """Per transformer/mode: ``self_nme`` (mean 68-point error over the source face width,
    self-reenactment), ``leak_src``/``leak_drv`` (mean canonical face-shape distance of cross
    outputs to the source and to the driver), ``au_err`` (mean |AU| error, 0..5 scale, cross)."""
    recs = [np.load(f) for f in sorted(Path(cache).glob("*.npz"))]
    recs = [r for r in recs if len(r["crops"])]
    template = read_tensors(TRANSFORMER, weights, ("template",))["template"].astype(np.float64)
    regressor = load_torch(AU_REGRESSOR, weights)
    acc: dict[str, dict[str, list[float]]] = {}
    still = []
    for a, rec in enumerate(recs):
        source, box, size = _source(rec)
        # The cached crop's pixels -> the prepared source's (padded) crop pixels.
        truth = crop_landmarks(rec["landmarks"], box, size)[:, IBUG, :2] - np.asarray(source.origin)
        still.append(np.linalg.norm(source.landmarks[IBUG, :2] - truth, axis=-1).mean() / source.face_width)
        drivers = _faces(rec, range(len(rec["landmarks"])))
        other = recs[(a + 1) % len(recs)]
        cross = _faces(other, range(len(other["landmarks"])))
        src_shape = to_canonical(source.landmarks, template)[SHAPE]
        for name, tr in _transformers(source, weights):
            row = acc.setdefault(name, {})
            tr.calibrate(drivers[0])
            out = np.stack([tr.transform(f).landmarks[IBUG, :2] for f in drivers])
            row.setdefault("self_nme", []).append(np.linalg.norm(out - truth, axis=-1).mean() / source.face_width)
            tr.calibrate(cross[0])
            outs = np.stack([to_canonical(tr.transform(f).landmarks, template) for f in cross])
            drv = np.stack([to_canonical(f.landmarks, template)[SHAPE] for f in cross])
            row.setdefault("leak_src", []).append(np.abs(outs[:, SHAPE] - src_shape).mean())
            row.setdefault("leak_drv", []).append(np.abs(outs[:, SHAPE] - drv).mean())
            with torch.no_grad():
                aus = regressor(torch.from_numpy(outs.astype(np.float32))).numpy() * 5.0
            row.setdefault("au_err", []).append(np.abs(aus - other["au"][:, :17]).mean())
    figures = {name: {k: float(np.mean(v)) for k, v in row.items()} for name, row in acc.items()}
    figures["still source"] = {"self_nme": float(np.mean(still))}
    return figures


def mixer_figures(cache: Path, weights: str | None = None, pairs: int = 256) -> dict[str, float]:
    """Background-region L1 (0..1 scale, over pixels outside the target's person mask) of the
    plain mix and of the neural mixer on fixed same-clip pairs, and the same over the part of
    it the other frame's person hid (what must be invented)."""
    from facepaint.engine.neural.background_mixer import BackgroundMixerNet
    from facepaint.runtime.training.cache import load_cache
    from facepaint.runtime.training.mixer import MixerData

    net = load_torch(MIXER, weights)
    if not isinstance(net, BackgroundMixerNet):
        raise ModelError(f"{MIXER} weights hold a {type(net).__name__}, not a BackgroundMixerNet")
    data = MixerData(load_cache(cache)[1], net.size)
    rng = np.random.default_rng(7)
    sums = {"geometric": [0.0, 0.0], "neural": [0.0, 0.0]}
    counts = [0.0, 0.0]
    for start in range(0, pairs, 32):
        face, mask, back = data.batch(rng, min(32, pairs - start))
        hidden = (_person_of_background(back, face) & (mask < 0.5)).float()
        outside = (mask < 0.5).float()
        with torch.no_grad():
            rgb, m = net(face, mask, back)
        outs = {"geometric": composite(face, mask, back), "neural": composite(rgb, m, back)}
        for name, out in outs.items():
            err = (out - face).abs().mean(1, keepdim=True)
            sums[name][0] += float((err * outside).sum())
            sums[name][1] += float((err * hidden).sum())
        counts[0] += float(outside.sum())
        counts[1] += float(hidden.sum())
    return {f"{name}/{region}": s[i] / max(counts[i], 1.0) for name, s in sums.items()
            for i, region in enumerate(("background", "uncovered"))}


def _person_of_background(back: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Where the background differs from the target frame by more than noise (the inpainted
    person of the other frame, or whatever moved), (B, 1, H, W) bool."""
    return (back - face).abs().mean(1, keepdim=True) > 0.04


def inpaint_figures(cache: Path, per_clip: int = 2, size: int = 4096) -> dict[str, dict[str, float]]:
    """Per inpainting method, on ``per_clip`` still-box crops of each cached clip (its first and
    last, ...), at the cache's resolution (``size``: ``inpaint_size``; the default is no shrinking):
    ``uncovered`` L1 (0..1) of crop b's background against crop a where a's person mask is under
    0.5 and the background differs from a by more than noise (``mixer_figures``' rule, per method);
    ``filled`` the same over one region for every method (where any method changed b's crop and
    a's person does not cover it); ``s`` seconds per crop."""
    from facepaint.engine.topology import get_topology
    from facepaint.runtime.training.cache import load_cache

    topo = get_topology("mediapipe478")
    # Today's default (Telea at 256 px) beside every method at ``size``.
    configs = {"telea@256": SourceConfig(), **{m: SourceConfig(inpaint=m, inpaint_size=size) for m in INPAINT_METHODS}}
    sums = {m: {"uncovered": 0.0, "n_unc": 0.0, "filled": 0.0, "s": 0.0} for m in configs}
    n_filled, n_crops = 0.0, 0
    for clip in load_cache(cache)[1]:
        if len(clip.still_crops) < 2:
            continue
        rows = np.unique(np.linspace(0, len(clip.still_crops) - 1, per_clip).round().astype(int))
        crops = [np.ascontiguousarray(clip.still_crops[k]) for k in rows]
        lms = [clip.still_landmarks()[k].astype(np.float64) for k in rows]
        backs, masks = {}, []
        for m, cfg in configs.items():
            t0 = time.perf_counter()
            layers = [person_layers(c, lm, topo, cfg) for c, lm in zip(crops, lms, strict=True)]
            sums[m]["s"] += time.perf_counter() - t0
            backs[m] = [b.astype(np.float32) / 255 for b, _ in layers]
            masks = [mask for _, mask in layers]
        n_crops += len(crops)
        for a in range(len(crops)):
            face = crops[a].astype(np.float32) / 255
            for b in range(len(crops)):
                if a == b:
                    continue
                filled = np.any([np.abs(backs[m][b] - crops[b] / 255).max(-1) > 0 for m in configs], 0)
                fixed = filled & (masks[a] < 0.5)
                n_filled += fixed.sum()
                for m in configs:
                    err = np.abs(backs[m][b] - face).mean(-1)
                    hidden = (err > 0.04) & (masks[a] < 0.5)
                    sums[m]["uncovered"] += err[hidden].sum()
                    sums[m]["n_unc"] += hidden.sum()
                    sums[m]["filled"] += err[fixed].sum()
    return {m: {"uncovered": v["uncovered"] / max(v["n_unc"], 1.0), "filled": v["filled"] / max(n_filled, 1.0),
                "s": v["s"] / max(n_crops, 1)} for m, v in sums.items()}


def inpaint_sheet(path: Path, size: int = 4096) -> None:
    """Four portraits' source crops with the person removed by each method (rows: portraits;
    columns: the crop, then one per method), and the seconds each took."""
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    rows = []
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        for name in ("obama", "biden2", "lp_s12", "lp_s42"):
            image = cv2.cvtColor(cv2.imread(str(MEDIA / "portraits" / f"{name}.jpg")), cv2.COLOR_BGR2RGB)
            face = tracker.track(image)[0]
            cells, times = [], []
            for m in INPAINT_METHODS:
                t0 = time.perf_counter()
                source = prepare_source(image, face, SourceConfig(inpaint=m, inpaint_size=size))
                times.append(f"{m} {time.perf_counter() - t0:.1f} s")
                cells.append(source.background)
            print(f"  {name} {image.shape[1]}x{image.shape[0]}, crop {source.crop.shape[1]}x{source.crop.shape[0]}: "
                  + ", ".join(times))
            row = np.concatenate([source.crop, *cells], 1)
            rows.append(cv2.resize(row, (round(row.shape[1] * 400 / row.shape[0]), 400), interpolation=cv2.INTER_AREA))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"sheet: {path} (columns: source crop, {', '.join(INPAINT_METHODS)})")


def head_motion(engines: dict, frames: list, faces: list, far: np.ndarray) -> dict[str, dict[str, float]]:
    """Per engine: mean absolute frame-to-frame change (0..255) of the ``far`` pixels and ms per
    render, over a driving sequence."""
    out = {}
    for name, render in engines.items():
        prev, diffs, t0 = None, [], time.perf_counter()
        for k, (frame, face) in enumerate(zip(frames, faces, strict=True)):
            img = render(frame, face, k / 25.0).astype(np.float32)
            if prev is not None:
                diffs.append(np.abs(img - prev)[far].mean())
            prev = img
        out[name] = {"bg_change": float(np.mean(diffs)), "ms": 1000 * (time.perf_counter() - t0) / len(frames)}
    return out


MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def _clip(path: Path, step: int, limit: int) -> list[np.ndarray]:
    cap, frames, i = cv2.VideoCapture(str(path)), [], 0
    while len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return frames


def _engines(image, face, weights):
    model = ModelConfig(weights=weights)
    configs = {
        "geometric mix": EngineConfig(model=model),
        "neural transformer": EngineConfig(transformer=TransformerConfig(kind="neural"), model=model),
        "neural transformer + mixer": EngineConfig(transformer=TransformerConfig(kind="neural"),
                                                   mixer=MixerConfig(kind="neural"), model=model),
        "neural mixer": EngineConfig(mixer=MixerConfig(kind="neural"), model=model),
    }
    engines = {name: ReenactmentEngine(cfg, image, face) for name, cfg in configs.items()}
    old = ReenactmentEngine(EngineConfig(model=model), image, face)

    def whole_crop(frame, drv, t):
        # What the engine pasted before the mix: the warp of the whole crop, background dragged.
        old.render(frame, drv, t)
        return old.mixer.paste(old.reenactor.render(old._shown, frame, drv.landmarks).image)

    renders = {"old paste": whole_crop, **{name: e.render for name, e in engines.items()}}
    return renders, engines["geometric mix"].source


def motion(weights: str | None, sheet: Path | None) -> None:
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    image = cv2.cvtColor(cv2.imread(str(MEDIA / "portraits" / "obama.jpg")), cv2.COLOR_BGR2RGB)
    turns = _clip(MEDIA / "driving" / "lp_d12.mp4", 3, 60)
    talk = _clip(MEDIA / "driving" / "lp_d10.mp4", 100, 2)
    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        src = tracker.track(image)[0]
        tracked = [(f, tracker.track(f)) for f in turns]
        talk_faces = [tracker.track(f)[0] for f in talk]
    turns = [f for f, found in tracked if found]
    faces = [found[0] for _, found in tracked if found]
    renders, source = _engines(image, src, weights)
    near = cv2.dilate((source.head_mask > 1e-3).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(0.2 * source.face_width) | 1,) * 2))
    far = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = source.box
    left, top = source.pad[:2]
    far[y0:y1, x0:x1] = near[top:top + y1 - y0, left:left + x1 - x0] == 0
    print(f"head motion (Obama x lp_d12, {len(turns)} frames; {int(far.sum())} background pixels "
          "0.1 face widths or more outside the source person mask): frame-to-frame mean abs change, 0..255")
    for name, row in head_motion(renders, turns, faces, far).items():
        print(f"  {name:28s} bg change {row['bg_change']:.3f}   {row['ms']:.1f} ms/frame")
    if sheet is not None:
        yaw = np.abs([f.rotation[0] - faces[0].rotation[0] for f in faces])
        cases = [(talk[0], talk_faces[0], talk[1], talk_faces[1]),
                 (turns[0], faces[0], turns[int(np.argmax(yaw))], faces[int(np.argmax(yaw))])]
        _sheet(image, source, renders, cases, sheet)


def _sheet(image, source, renders, cases, path: Path) -> None:
    x0, y0, x1, y1 = source.box
    rows = []
    for f0, d0, f1, d1 in cases:
        cells = [image[y0:y1, x0:x1], cv2.resize(f1, (x1 - x0, y1 - y0))]
        for render in renders.values():
            render(f0, d0, 0.0)
            cells.append(render(f1, d1, 1.0)[y0:y1, x0:x1])
        rows.append(np.concatenate(cells, 1))
    grid = np.concatenate(rows, 0)
    scale = min(1.0, 2400 / grid.shape[1])
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(grid, None, fx=scale, fy=scale), cv2.COLOR_RGB2BGR))
    print(f"sheet: {path} (columns: source, driving, {', '.join(renders)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--parts", default="transformer,mixer,motion")
    ap.add_argument("--inpaint-sheet", type=Path, default=None)
    ap.add_argument("--inpaint-size", type=int, default=4096, help="inpaint_size of the inpaint part (4096: full)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if "transformer" in parts:
        print("landmark transformer on", args.cache)
        print("  self_nme: 68-point error / face width, source = first frame; leak_src / leak_drv: "
              "canonical face-shape distance of cross outputs to source / driver; au_err: |AU| 0..5")
        for name, row in transformer_figures(args.cache, args.weights).items():
            print(f"  {name:22s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
    if "mixer" in parts:
        print("background mixer on", args.cache, "(L1 0..1 outside the target's person mask; "
              "'uncovered': where the background frame differs from the truth)")
        for name, value in mixer_figures(args.cache, args.weights).items():
            print(f"  {name:24s} {value:.4f}")
    if "motion" in parts:
        motion(args.weights, args.sheet)
    if "inpaint" in parts:
        print("inpainting on", args.cache, f"(inpaint_size {args.inpaint_size}; L1 0..1: 'uncovered' as the "
              "mixer's, 'filled' over one region for all methods)")
        for name, row in inpaint_figures(args.cache, size=args.inpaint_size).items():
            print(f"  {name:9s} uncovered {row['uncovered']:.4f}  filled {row['filled']:.4f}  {row['s']:.2f} s/crop")
        if args.inpaint_sheet is not None:
            inpaint_sheet(args.inpaint_sheet, args.inpaint_size)


if __name__ == "__main__":
    main()
