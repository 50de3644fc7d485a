"""Neural landmark transformer and background mixer against their geometric twins: figures + a sheet.

    python bench/lmt_mixer.py --cache /work/cache/lmt/validate [--weights DIR] [--sheet out.png]
        [--parts transformer,mixer,motion]

The cache is the training cache (``facepaint.runtime.training.cache.build_cache``) of media/validate (people the
shipped weights never saw). ``motion`` renders the Obama portrait driven by lp_d12 (large head
turns) with the old whole-crop paste, the geometric mix and the neural mixer, and writes the
contact sheet (source, driving, old paste, geometric mix, neural transformer + geometric mix,
neural transformer + neural mixer) on an open-mouth and a head-turn frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.background_mixer import MixerConfig
from facepaint.engine.landmark_transformer import TransformerConfig
from facepaint.engine.reenactment import EngineConfig, ReenactmentEngine
from facepaint.engine.stages import ModelConfig
from facepaint.runtime.evaluation.lmt_mixer_figures import head_motion, mixer_figures, transformer_figures

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


if __name__ == "__main__":
    main()
