"""``facepaint-live eval``: how well a reenacted video keeps identity and follows the driving motion.

Cross-reenactment (FACEGAN): a portrait driven by another person's video. Self-reenactment (FOMM):
the first frame of a video driven by the same video, compared with the real frames. Every figure is
given for the output and, from the same run and the same frames, for two bounds: ``frozen_source``
(the source unmoved: identity perfect, motion zero) and ``pasted_driving`` (the driving frame
fitted into the output size, aspect kept: motion perfect, identity wrong).

The judges: dlib's face descriptor for identity (the ``[eval]`` extra) and the MediaPipe tracker
(smoothing off) for blendshapes, AUs, pose and landmarks.

JSON layout (key tuples below, pinned by tests; undefined figures are ``null``, never NaN):

* top level, ``REPORT_KEYS``: ``metrics`` is the output's ``METRIC_KEYS`` dict, ``bounds`` maps each
  of ``BOUND_NAMES`` to the same; ``render`` is the renderer's ``--stats-json`` (null with --output).
* ``identity`` (``IDENTITY_KEYS``): AED = descriptor distance to the source (median / mean over
  judged frames, < 0.6 same person), CSIM = cosine similarity, frames judged and frames without a face.
* ``expression`` (``EXPRESSION_KEYS``): ED over the 51 expression blendshapes and the 17 AUs, and per
  signal of ``SIGNAL_KEYS`` Pearson ``r`` and ``amplitude`` = std(output) / std(driving).
* ``pose`` (``ANGLE_KEYS``): per angle ``mae_deg`` and ``r`` of the pose relative to the first frame.
* ``landmarks``: ``akd`` in inter-ocular distances, ``mode`` absolute (self) or relative (cross).
* ``image`` (``IMAGE_KEYS``, self-reenactment only, else null): L1 on [0, 1], PSNR in dB (capped at
  100), SSIM (on the judged frames only, ``ssim_frames`` of them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.errors import ConfigError, InputError, NoFaceError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.sources.image import read_image
from facepaint.runtime import metrics as M
from facepaint.runtime.identity import IDENTITY_MODEL

SCHEMA = "facepaint-eval/1"
REPORT_KEYS = ("schema", "mode", "source", "driving", "output", "frames", "every", "max_frames",
               "identity_model", "tracker", "date", "seconds", "render", "driving_faces_missing",
               "metrics", "bounds")
BOUND_NAMES = ("frozen_source", "pasted_driving")
METRIC_KEYS = ("frames", "faces_missing", "identity", "expression", "pose", "landmarks", "image")
IDENTITY_KEYS = ("aed_median", "aed_mean", "csim_median", "csim_mean", "same_person_rate",
                 "frames_judged", "faces_missing")
EXPRESSION_KEYS = ("ed_blendshapes", "ed_au", "signals")
SIGNAL_KEYS = tuple(M.SIGNALS)
ANGLE_KEYS = M.ANGLES
IMAGE_KEYS = ("l1", "psnr", "ssim", "ssim_frames")
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
    """

    driving: str
    source: str | None = None
    output: str | None = None
    every: int = 5
    max_frames: int | None = None
    self_reenactment: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 3:
            raise ValueError(f"--max-frames must be >= 3, got {self.max_frames}")
        if self.self_reenactment == (self.source is not None):
            raise ValueError("give either --source PORTRAIT with --driving VIDEO, or --self VIDEO")


def iter_frames(path: str, what: str = "video") -> Any:
    """Yield the RGB frames of a video file (PyAV, threaded decoding).

    Raises:
        InputError: When the file is missing or cannot be read as a video.
    """
    from facepaint.plugins.sources.video import open_video

    container, stream = open_video(path, what)
    with container:
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def video_rate(path: str) -> Fraction:
    """The exact frame rate of a video file (``VideoSource.rate``)."""
    from facepaint.plugins.sources.video import VideoSource

    with VideoSource(path) as video:
        return video.rate


def trim_video(src: str, dst: str, max_frames: int) -> int:
    """Write the first ``max_frames`` frames of ``src`` to ``dst`` (H.264 CRF 12, no audio).

    Returns:
        The number of frames written.
    """
    import av

    written = 0
    with av.open(dst, "w") as out:
        stream = out.add_stream("libx264", rate=video_rate(src))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for rgb in iter_frames(src, "driving video"):
            if written == 0:
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            written += 1
            if written >= max_frames:
                break
        out.mux(stream.encode(None))
    return written


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG, lossless)."""
    import cv2

    cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1]))


def render(source: str, driving: str, output: str, stats_json: str) -> dict | None:
    """Render ``driving`` onto ``source`` with the main command; returns its run statistics.

    Raises:
        FacepaintError: Whatever the renderer raises.
        InputError: When the renderer exits with a non-zero code.
    """
    from facepaint.runtime.cli import run

    code = run(["--source", source, "--driving", driving, "--output", output, "--quiet",
                "--stats-json", stats_json])
    if code != 0:
        raise InputError(f"rendering {driving} onto {source} failed with exit code {code}")
    path = Path(stats_json)
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate(config: EvalConfig, progress: Progress | None = None, identity: Any | None = None) -> dict:
    """Render (unless ``config.output`` is given) and score one source / driving pair.

    Args:
        config: What to evaluate.
        progress: Called with one-line progress messages (None: silent).
        identity: An ``IdentityJudge`` to reuse across evaluations (None: one is loaded).

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
        source, driving = _prepare(config, Path(tmp))
        output, stats = config.output, None
        if output is None:
            say(f"rendering {Path(config.driving).name} onto {Path(config.source or 'first frame').name}")
            output = str(Path(tmp) / "output.mp4")
            stats = render(source, driving, output, str(Path(tmp) / "stats.json"))
        say(f"judging {Path(config.output or config.driving).name}, identity every {config.every} frames")
        scored = judge(read_image(source, "source portrait"), driving, output, config.every,
                       config.self_reenactment, say, identity)
    body = {"schema": SCHEMA, "mode": "self" if config.self_reenactment else "cross",
            "source": config.source or f"{config.driving} (first frame)", "driving": config.driving,
            "output": config.output, "every": config.every, "max_frames": config.max_frames,
            "identity_model": IDENTITY_MODEL, "tracker": TRACKER_NAME,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - started, 2), "render": stats, **scored}
    return {key: body[key] for key in REPORT_KEYS}


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


def _make_tracker() -> Any:
    from facepaint.plugins.base import load_plugin
    from facepaint.plugins.trackers.config import TrackerConfig

    # The judge sees raw per-frame tracking: smoothing would damp blinks in output and driving alike.
    return load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False, max_faces=1))


def _first(tracks: Sequence[FaceTrack]) -> FaceTrack | None:
    return tracks[0] if tracks else None


class _Judges:
    """The judges of one evaluation (a tracker per video stream, the identity network) and what
    they measured on the output and the two bounds, fed one frame pair at a time.

    Args:
        stack: Closes the trackers when the evaluation ends.
        source: The source image (RGB).
        every: Identity network and SSIM on every ``every``-th frame.
        self_mode: Also compare pixels with the real (driving) frames.
        identity: An ``IdentityJudge`` to reuse, or None.

    Raises:
        NoFaceError: When dlib finds no face in the source.
    """

    def __init__(self, stack: ExitStack, source: np.ndarray, every: int, self_mode: bool,
                 identity: Any | None) -> None:
        from facepaint.runtime.identity import IdentityJudge

        self.ident = identity if identity is not None else IdentityJudge()
        self.src_desc = self.ident.descriptor(source)
        if self.src_desc is None:
            raise NoFaceError("the identity judge (dlib) found no face in the source image")
        self.source, self.every, self.self_mode = source, every, self_mode
        self.logs = {name: M.CandidateLog() for name in ("output", *BOUND_NAMES)}
        self.drv_tracks: list[FaceTrack | None] = []
        # One tracker per stream: video-mode tracking keeps state between the frames of one stream
        # (the frozen still goes through a tracker's separate image mode).
        self.trk = {name: _make_tracker() for name in ("driving", "output", "pasted")}
        for tracker in self.trk.values():
            stack.callback(tracker.close)
        self.frozen: np.ndarray | None = None
        self.frozen_track: FaceTrack | None = None
        self.frozen_desc: np.ndarray | None = None

    def frame(self, i: int, ts: int, drv: np.ndarray, out: np.ndarray) -> None:
        """Judge frame ``i`` (timestamp ``ts`` ms) of the driving and the output video."""
        if self.frozen is None:  # the output size is known only from its first frame
            self.frozen = _resize(self.source, out.shape)
            self.frozen_track = _first(self.trk["pasted"].track(self.frozen, None))
            self.frozen_desc = self.ident.descriptor(self.frozen)
        pasted = _resize(drv, out.shape)
        logs = self.logs
        self.drv_tracks.append(_first(self.trk["driving"].track(drv, ts)))
        logs["output"].add_track(_first(self.trk["output"].track(out, ts)))
        # Same size: the pasted frame *is* the driving frame; tracking it again gives the same.
        logs["pasted_driving"].add_track(self.drv_tracks[-1] if pasted is drv else
                                         _first(self.trk["pasted"].track(pasted, ts)))
        logs["frozen_source"].add_track(self.frozen_track)
        judged = i % self.every == 0
        if judged:
            logs["output"].add_identity(self.ident.descriptor(out), self.src_desc)
            logs["pasted_driving"].add_identity(self.ident.descriptor(pasted), self.src_desc)
            logs["frozen_source"].add_identity(self.frozen_desc, self.src_desc)
        if self.self_mode:
            for name, image in (("output", out), ("frozen_source", self.frozen), ("pasted_driving", pasted)):
                logs[name].add_image(image, pasted, with_ssim=judged)

    def result(self) -> dict:
        """{"frames", "driving_faces_missing", "metrics", "bounds"} of the report."""
        drv = M.series_from_tracks(self.drv_tracks)
        # Self-reenactment: the pasted frames are the real frames at the output size.
        real = M.series_from_tracks(self.logs["pasted_driving"].tracks) if self.self_mode else None
        return {"frames": len(self.drv_tracks), "driving_faces_missing": int((~drv.found).sum()),
                "metrics": M.candidate_metrics(self.logs["output"], drv, real),
                "bounds": {n: M.candidate_metrics(self.logs[n], drv, real) for n in BOUND_NAMES}}


def judge(source: np.ndarray, driving: str, output: str, every: int, self_mode: bool,
          say: Progress, identity: Any | None = None) -> dict:
    """Track and judge the output and both bounds frame by frame, in one pass over both videos.

    Args:
        source: The source image (RGB).
        driving: Driving video path.
        output: Output video path (extra frames beyond the driving's are ignored).
        every: Identity network and SSIM on every ``every``-th frame.
        self_mode: Also compare pixels and absolute landmarks with the real (driving) frames.
        say: Progress callback.
        identity: An ``IdentityJudge`` to reuse (None: one is loaded).

    Returns:
        {"frames", "driving_faces_missing", "metrics", "bounds"} of the report.

    Raises:
        NoFaceError: When dlib finds no face in the source.
        InputError: When a video cannot be read.
    """
    step_ms = 1000.0 / float(video_rate(driving))
    with ExitStack() as stack:
        judges = _Judges(stack, source, every, self_mode, identity)
        pairs = zip(iter_frames(driving, "driving video"), iter_frames(output, "output video"))
        for i, (drv, out) in enumerate(pairs):
            judges.frame(i, round(i * step_ms), drv, out)
            if i % 50 == 49:
                say(f"  frame {i + 1}")
        return judges.result()


def _resize(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` fitted into ``shape``'s height and width, aspect kept, centred on black.

    Returned as is when it already fits. Stretching instead would distort the face, and the
    tracker would read the distortion as expression: the bounds must see the face undistorted.
    """
    import cv2

    h, w = shape[:2]
    ih, iw = image.shape[:2]
    if (ih, iw) == (h, w):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = min(w, round(iw * scale)), min(h, round(ih * scale))
    resized = image if (nh, nw) == (ih, iw) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = resized
    return canvas


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``facepaint-live eval``."""
    p = argparse.ArgumentParser(prog="facepaint-live eval",
                                description="Quality report: identity, expression, pose, landmarks "
                                            "and (self-reenactment) pixels, beside two bounds.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", help="source portrait (cross-reenactment; needs --driving)")
    what.add_argument("--self", dest="self_video", metavar="VIDEO",
                      help="self-reenactment: the video's first frame driven by the video itself")
    p.add_argument("--driving", help="driving video (cross-reenactment)")
    p.add_argument("--output", help="an already rendered output video (skips rendering)")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the report to this JSON file")
    p.add_argument("--every", type=int, default=5, metavar="K",
                   help="run the identity network and SSIM on every K-th frame (default 5)")
    p.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames of the driving clip")
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
                          self_reenactment=args.self_video is not None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def summary_lines(report: dict) -> list[str]:
    """A short human-readable table of a report: output beside its two bounds."""
    rows = [("identity AED (median, <0.6 same)", ("identity", "aed_median")),
            ("expression ED (blendshapes)", ("expression", "ed_blendshapes"))]
    rows += [(f"{s} r / amplitude", ("expression", "signals", s)) for s in M.SIGNALS]
    rows += [(f"{a} MAE deg / r", ("pose", a)) for a in M.ANGLES]
    rows += [("landmarks AKD (IOD)", ("landmarks", "akd"))]
    if report["mode"] == "self":
        rows += [("L1", ("image", "l1")), ("PSNR dB", ("image", "psnr")), ("SSIM", ("image", "ssim"))]
    cands = [report["metrics"], report["bounds"]["frozen_source"], report["bounds"]["pasted_driving"]]
    lines = [f"{report['mode']}: {report['driving']}  frames {report['frames']}",
             f"{'':36s}{'output':>16s}{'frozen':>16s}{'pasted':>16s}"]
    for label, path in rows:
        lines.append(f"{label:36s}" + "".join(f"{_cell(c, path):>16s}" for c in cands))
    return lines


def _cell(metrics: dict, path: Sequence[str]) -> str:
    value = metrics
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
    report = evaluate(config, progress=lambda msg: print(f"eval: {msg}", file=sys.stderr, flush=True))
    print("\n".join(summary_lines(report)))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    return 0
