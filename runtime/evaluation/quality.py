"""``facepaint-live eval``: how well a reenacted video keeps identity and follows the driving motion.

Cross-reenactment (FACEGAN): a portrait driven by another person's video. Self-reenactment (FOMM):
the first frame of a video driven by the same video, compared with the real frames. Every figure is
given for the output and, from the same run and the same frames, for two bounds: ``frozen_source``
(the source unmoved: identity perfect, motion zero) and ``pasted_driving`` (the driving frame
fitted into the output size, aspect kept: motion perfect, identity wrong).

The judges: dlib's face descriptor for identity (the ``[eval]`` extra), the MediaPipe tracker
(smoothing off) for blendshapes, AUs, pose and landmarks, and a second motion judge independent of
the tracker that drives the engine (``geometry_judge``: dlib's 68 landmarks read as continuous
geometry, also from the ``[eval]`` extra).

JSON layout (key tuples below, pinned by tests; undefined figures are ``null``, never NaN):

* top level, ``REPORT_KEYS``: ``metrics`` is the output's ``METRIC_KEYS`` dict, ``bounds`` maps each
  of ``BOUND_NAMES`` to the same; ``render`` is the renderer's ``--stats-json`` (null with --output).
* ``identity`` (``IDENTITY_KEYS``): AED = descriptor distance to the source (median / mean over
  judged frames, < 0.6 same person), CSIM = cosine similarity, frames judged and frames without a face.
* ``expression`` (``EXPRESSION_KEYS``): ED over the 51 expression blendshapes and the 17 AUs, and per
  signal of ``SIGNAL_KEYS`` Pearson ``r``, ``amplitude`` = std(output) / std(driving) and
  ``lag_frames`` (the shift within 8 frames that maximises r; positive: the output is late).
* ``pose`` (``ANGLE_KEYS``): per angle ``mae_deg``, ``r`` and ``amplitude`` of the pose relative to
  the first frame.
* ``landmarks`` (``LANDMARK_KEYS``): ``akd`` in inter-ocular distances, ``mode`` absolute (self) or
  relative (cross), ``jitter`` = mean landmark acceleration (IOD / frame², lower is steadier).
* ``faces`` (``eval --faces``, else null): face number -> ``square_side`` and the one-face figures
  (``frames``, ``driving_faces_missing``, ``judge_agreement``, ``metrics``, ``bounds``) of that face
  judged in a square around it (``runtime.evaluation.faces``); the top-level figures are the first
  chosen face's.
* ``judge_agreement`` (top level, ``GEOMETRY_KEYS``): Pearson r between the two motion judges on
  the driving video itself: how reliably each signal can be measured in that clip at all.
* ``geometry_judge`` (``GEOMETRY_KEYS``): per signal Pearson ``r`` and ``amplitude`` by the second
  judge (angles relative to the first frame).
* ``image`` (``IMAGE_KEYS``, self-reenactment only, else null): L1 on [0, 1], PSNR in dB (capped at
  100), SSIM (on the judged frames only, ``ssim_frames`` of them), and the same over the face
  (oval hull / its box) and the mouth box of the real frame (``face_l1``, ``mouth_l1``...;
  ``runtime.evaluation.regions``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.faces import FacesSpec
from facepaint.plugins.sources.image import read_image
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.faces import faces_scores
from facepaint.runtime.evaluation.geometry_judge import GEOMETRY_MODEL, GEOMETRY_SIGNALS
from facepaint.runtime.evaluation.identity import IDENTITY_MODEL
from facepaint.runtime.evaluation.regions import REGION_KEYS
from facepaint.runtime.evaluation.source_video import video_source_scores
from facepaint.runtime.evaluation.streams import iter_frames, judge, trim_video, write_image
from facepaint.runtime.flags import EVAL, add_flags, config_layer
from facepaint.runtime.source_track import is_video_source

SCHEMA = "facepaint-eval/2"
REPORT_KEYS = ("schema", "mode", "source", "driving", "output", "frames", "every", "max_frames",
               "identity_model", "tracker", "geometry_model", "date", "seconds", "render",
               "driving_faces_missing", "judge_agreement", "metrics", "bounds", "faces")
METRIC_KEYS = ("frames", "faces_missing", "identity", "expression", "pose", "landmarks", "image",
               "geometry_judge")
GEOMETRY_KEYS = GEOMETRY_SIGNALS
IDENTITY_KEYS = ("aed_median", "aed_mean", "csim_median", "csim_mean", "same_person_rate",
                 "frames_judged", "faces_missing")
EXPRESSION_KEYS = ("ed_blendshapes", "ed_au", "signals")
SIGNAL_KEYS = tuple(M.SIGNALS)
LANDMARK_KEYS = ("akd", "mode", "jitter")
ANGLE_KEYS = M.ANGLES
BOUND_NAMES = M.BOUND_NAMES
IMAGE_KEYS = ("l1", "psnr", "ssim", "ssim_frames", *REGION_KEYS)
TRACKER_NAME = "mediapipe (smoothing off)"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation.

    Attributes:
        driving: Driving video (for self-reenactment, the video itself).
        source: Source portrait; None for self-reenactment (the video's first frame is used).
        output: An already rendered output video; None renders one with the main command.
        every: The identity network (and SSIM) runs on every ``every``-th frame (~0.1 s a face).
        max_frames: Use only the first frames of the driving clip (None: all).
        self_reenactment: Source = first frame of ``driving``, compared with the real frames.
        faces: ``--faces``: the source's faces rendered and judged one by one (None: one face).
    """

    driving: str
    source: str | None = None
    output: str | None = None
    every: int = 5
    max_frames: int | None = None
    self_reenactment: bool = False
    faces: FacesSpec | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 3:
            raise ValueError(f"--max-frames must be >= 3, got {self.max_frames}")
        if self.self_reenactment == (self.source is not None):
            raise ValueError("give either --source PORTRAIT with --driving VIDEO, or --self VIDEO")
        if self.faces is not None and self.self_reenactment:
            raise ValueError("--faces judges the faces of a --source; a --self video has one face")


def render(source: str, driving: str, output: str, engine: Mapping[str, Any] | None = None,
           size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Render ``driving`` onto ``source`` into ``output`` as the main command does; returns its statistics.

    Args:
        source: Source portrait.
        driving: Driving video.
        output: Video file to write.
        engine: An ``[engine]`` config layer (stage kinds, model); None: the defaults.
        size: Fit the output inside this (width, height), as ``--size`` (None: the portrait's resolution).

    Raises:
        FacepaintError: Whatever the render raises.
    """
    from facepaint.runtime.config import build_app_config
    from facepaint.runtime.offline import render_file

    # The output is a file in the caller's own temporary folder, written again on every bench round.
    base = {"source": source, "driving": driving, "output": output, "progress": False, "overwrite": True}
    if size is not None:
        base["size"] = size
    return render_file(build_app_config(base, {"engine": dict(engine or {})}))


def evaluate(config: EvalConfig, progress: Progress | None = None, identity: Any | None = None,
             geometry: Any | None = None, engine: Mapping[str, Any] | None = None) -> dict:
    """Render (unless ``config.output`` is given) and score one source / driving pair.

    Args:
        config: What to evaluate.
        progress: Called with one-line progress messages (None: silent).
        identity: An ``IdentityJudge`` to reuse across evaluations (None: one is loaded).
        geometry: A ``GeometryJudge`` to reuse across evaluations (None: one is loaded).
        engine: The ``[engine]`` config layer of the render (stage kinds, model); None: defaults.

    Returns:
        The report, a JSON-ready dict with the keys of ``REPORT_KEYS``.

    Raises:
        InputError: A file is missing or unreadable, or no face is in the source.
        BackendUnavailable: dlib (the ``[eval]`` extra) is not installed.
    """
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    for path in (config.driving, config.source, config.output):
        if path is not None and not Path(path).is_file():
            raise InputError(f"file not found: {path}")
    with tempfile.TemporaryDirectory(prefix="facepaint-eval-") as tmp:
        if config.faces is not None:  # each face in its own square (evaluation.faces)
            stats, scored = faces_scores(str(config.source), config.driving, config.output, Path(tmp),
                                         spec=config.faces, every=config.every, max_frames=config.max_frames,
                                         engine=engine, say=say, identity=identity, geometry=geometry)
            return _report(config, started, stats, scored)
        if is_video_source(config.source):  # identity against the clip's own frames (evaluation.source_video)
            say(f"rendering {Path(config.driving).name} onto the source video {Path(str(config.source)).name}")
            stats, scored = video_source_scores(str(config.source), config.driving, config.output, Path(tmp),
                                                every=config.every, max_frames=config.max_frames, engine=engine,
                                                say=say, identity=identity, geometry=geometry)
            return _report(config, started, stats, scored)
        source, driving = _prepare(config, Path(tmp))
        output, stats = config.output, None
        if output is None:
            say(f"rendering {Path(config.driving).name} onto {Path(config.source or 'first frame').name}")
            output = str(Path(tmp) / "output.mp4")
            stats = render(source, driving, output, _self_reference(engine) if config.self_reenactment else engine)
        say(f"judging {Path(config.output or config.driving).name}, identity every {config.every} frames")
        scored = judge(read_image(source, "source portrait"), driving, output, config.every,
                       config.self_reenactment, say, identity, geometry)
    return _report(config, started, stats, scored)


def _report(config: EvalConfig, started: float, stats: dict[str, Any] | None, scored: dict) -> dict:
    """The report of ``evaluate``: the keys of ``REPORT_KEYS``."""
    body = {"schema": SCHEMA, "mode": "self" if config.self_reenactment else "cross",
            "source": config.source or f"{config.driving} (first frame)", "driving": config.driving,
            "output": config.output, "every": config.every, "max_frames": config.max_frames,
            "identity_model": IDENTITY_MODEL, "tracker": TRACKER_NAME, "geometry_model": GEOMETRY_MODEL,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - started, 2), "render": stats, "faces": None, **scored}
    return {key: body[key] for key in REPORT_KEYS}


def _self_reference(engine: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine layer of a self-reenactment render: ``reference = "first"`` unless given.

    The source is the clip's first frame, so that frame's face is the neutral that maps to the
    source as it is (FOMM's protocol). ``auto`` would pick the calmest face instead and carry its
    offset from the first frame into every output frame: lp_d12, which starts mid-expression,
    scored L1 0.092 against 0.079 for the source held still.
    """
    layer = dict(engine or {})
    transformer = dict(layer.get("transformer", {}))
    transformer.setdefault("reference", "first")
    layer["transformer"] = transformer
    return layer


def _prepare(config: EvalConfig, tmp: Path) -> tuple[str, str]:
    """(source, driving) paths to render and judge: the clip cut to ``max_frames`` and, for
    self-reenactment, its first frame written as the source (PNG, lossless).

    Raises:
        InputError: When the driving video is unreadable or has no frames.
    """
    driving = config.driving
    if config.max_frames is not None:
        driving = str(tmp / "driving.mp4")
        trim_video(config.driving, driving, config.max_frames)
    if not config.self_reenactment:
        return str(config.source), driving
    frames = iter_frames(driving, "driving video")
    first = next(frames, None)
    frames.close()
    if first is None:
        raise InputError(f"driving video {config.driving} has no frames; give another file")
    write_image(str(tmp / "source.png"), first)
    return str(tmp / "source.png"), driving


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``facepaint-live eval``."""
    p = argparse.ArgumentParser(prog="facepaint-live eval",
                                description="Quality report: identity, expression, pose, landmarks "
                                            "and (self-reenactment) pixels, beside two bounds.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", help="source portrait or video (cross-reenactment; needs --driving)")
    what.add_argument("--self", dest="self_video", metavar="VIDEO",
                      help="self-reenactment: the video's first frame driven by the video itself, "
                           "with that frame as the reference (unless --reference is given)")
    p.add_argument("--driving", help="driving video (cross-reenactment)")
    p.add_argument("--output", help="an already rendered output video (skips rendering)")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the report to this JSON file")
    p.add_argument("--every", type=int, default=5, metavar="K",
                   help="run the identity network and SSIM on every K-th frame (default 5)")
    p.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames of the driving clip")
    add_flags(p, EVAL)
    return p


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Build the EvalConfig from parsed arguments.

    Raises:
        ConfigError: On a missing or conflicting flag or a bad value.
    """
    if args.source is not None and args.driving is None:
        raise ConfigError("--source needs --driving VIDEO (or use --self VIDEO)")
    if args.self_video is not None and args.driving is not None:
        raise ConfigError("--self VIDEO takes no --driving: the video drives itself")
    try:
        return EvalConfig(driving=args.self_video or args.driving, source=args.source,
                          output=args.output, every=args.every, max_frames=args.max_frames,
                          self_reenactment=args.self_video is not None,
                          faces=config_layer(args, EVAL).get("faces"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def summary_lines(report: dict) -> list[str]:
    """A short human-readable table of a report: output beside its two bounds (with ``--faces``,
    one table per face)."""
    if report.get("faces"):
        return [line for n, face in report["faces"].items()
                for line in [f"face {n} (a {face['square_side']} px square around it)",
                             *_table({**report, **face, "faces": None})]]
    return _table(report)


def _table(report: dict) -> list[str]:
    """The table of ``summary_lines`` for one face."""
    rows: list[tuple[str, tuple[str, ...]]] = [("identity AED (median, <0.6 same)", ("identity", "aed_median")),
            ("expression ED (blendshapes)", ("expression", "ed_blendshapes"))]
    rows += [(f"{s} r / amplitude", ("expression", "signals", s)) for s in M.SIGNALS]
    rows += [(f"{a} MAE deg / r", ("pose", a)) for a in M.ANGLES]
    rows += [("landmarks AKD (IOD)", ("landmarks", "akd")), ("landmark jitter", ("landmarks", "jitter")),
             ("jaw lag (frames)", ("expression", "signals", "jaw", "lag_frames"))]
    rows += [(f"{s} r / amplitude (2nd judge)", ("geometry_judge", s)) for s in GEOMETRY_SIGNALS]
    if report["mode"] == "self":
        rows += [("L1", ("image", "l1")), ("PSNR dB", ("image", "psnr")), ("SSIM", ("image", "ssim"))]
        rows += [(f"{region} {what}", ("image", f"{region}_{key}")) for region in ("face", "mouth")
                 for what, key in (("L1", "l1"), ("PSNR dB", "psnr"), ("SSIM", "ssim"))]
    cands = [report["metrics"], report["bounds"]["frozen_source"], report["bounds"]["pasted_driving"]]
    lines = [f"{report['mode']}: {report['driving']}  frames {report['frames']}",
             f"{'':36s}{'output':>16s}{'frozen':>16s}{'pasted':>16s}"]
    for label, path in rows:
        lines.append(f"{label:36s}" + "".join(f"{_cell(c, path):>16s}" for c in cands))
    return lines


def _cell(metrics: dict, path: Sequence[str]) -> str:
    value: Any = metrics
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, dict):
        first, second = list(value.values())[:2]
        return f"{_fmt(first)} / {_fmt(second)}"
    return _fmt(value)


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``facepaint-live eval``: progress on stderr, the summary on stdout.

    Returns:
        The exit code (0).

    Raises:
        FacepaintError: Bad flags, unreadable input, missing dlib, rendering failures.
    """
    args = build_parser().parse_args(list(argv))
    config = config_from_args(args)
    report = evaluate(config, progress=lambda msg: print(f"eval: {msg}", file=sys.stderr, flush=True),
                      engine=config_layer(args, EVAL).get("engine", {}))
    print("\n".join(summary_lines(report)))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    return 0
