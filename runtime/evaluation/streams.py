"""The streams of an evaluation: reading and cutting videos, and judging them frame by frame.

One pass over the driving and the output video feeds three candidates (the output and the two
bounds of ``facepaint.runtime.evaluation.quality``) to a tracker per stream and to the identity network;
``facepaint.runtime.evaluation.metrics`` turns what they saw into figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from fractions import Fraction
from typing import Any

import numpy as np

from facepaint.engine.errors import NoFaceError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import StreamTimestamps
from facepaint.plugins.sinks.vcam import letterbox
from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.regions import region_means, region_scores

BOUND_NAMES = M.BOUND_NAMES
Progress = Callable[[str], None]


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
    """Write the first ``max_frames`` frames of ``src`` to ``dst`` (``write_video``).

    Returns:
        The number of frames written.
    """
    return write_video(dst, itertools.islice(iter_frames(src, "driving video"), max_frames), video_rate(src))


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG, lossless)."""
    import cv2

    cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1]))


def make_judge_tracker() -> Any:
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
        geometry: A ``GeometryJudge`` (the second motion judge) to reuse, or None.

    Raises:
        NoFaceError: When dlib finds no face in the source.
    """

    def __init__(self, stack: ExitStack, source: np.ndarray, every: int, self_mode: bool,
                 identity: Any | None, geometry: Any | None) -> None:
        from facepaint.runtime.evaluation.geometry_judge import GeometryJudge
        from facepaint.runtime.evaluation.identity import IdentityJudge

        self.ident = identity if identity is not None else IdentityJudge()
        self.geo = geometry if geometry is not None else GeometryJudge()
        self.src_desc = self.ident.descriptor(source)
        if self.src_desc is None:
            raise NoFaceError("the identity judge (dlib) found no face in the source image")
        self.source, self.every, self.self_mode = source, every, self_mode
        self.logs = {name: M.CandidateLog() for name in ("output", *BOUND_NAMES)}
        self.drv_tracks: list[FaceTrack | None] = []
        self.drv_geometry: list[np.ndarray | None] = []
        # One tracker per stream: video-mode tracking keeps state between the frames of one stream
        # (the frozen still goes through a tracker's separate image mode).
        self.trk = {name: make_judge_tracker() for name in ("driving", "output", "pasted")}
        for tracker in self.trk.values():
            stack.callback(tracker.close)
        self.frozen: np.ndarray | None = None
        self.frozen_track: FaceTrack | None = None
        self.frozen_desc: np.ndarray | None = None
        self.frozen_geometry: np.ndarray | None = None

    def frame(self, i: int, ts: int, drv: np.ndarray, out: np.ndarray) -> None:
        """Judge frame ``i`` (timestamp ``ts`` ms) of the driving and the output video."""
        if self.frozen is None:  # the output size is known only from its first frame
            self.frozen = _fit(self.source, out.shape)
            self.frozen_track = _first(self.trk["pasted"].track(self.frozen, None))
            self.frozen_desc = self.ident.descriptor(self.frozen)
            self.frozen_geometry = self.geo.measure(self.frozen)
        pasted = _fit(drv, out.shape)
        logs = self.logs
        self.drv_tracks.append(_first(self.trk["driving"].track(drv, ts)))
        logs["output"].add_track(_first(self.trk["output"].track(out, ts)))
        # Same size: the pasted frame *is* the driving frame; tracking it again gives the same.
        logs["pasted_driving"].add_track(self.drv_tracks[-1] if pasted is drv else
                                         _first(self.trk["pasted"].track(pasted, ts)))
        logs["frozen_source"].add_track(self.frozen_track)
        self.drv_geometry.append(self.geo.measure(drv))
        logs["output"].add_geometry(self.geo.measure(out))
        logs["pasted_driving"].add_geometry(self.drv_geometry[-1] if pasted is drv else self.geo.measure(pasted))
        logs["frozen_source"].add_geometry(self.frozen_geometry)
        judged = i % self.every == 0
        if judged:
            logs["output"].add_identity(self.ident.descriptor(out), self.src_desc)
            logs["pasted_driving"].add_identity(self.ident.descriptor(pasted), self.src_desc)
            logs["frozen_source"].add_identity(self.frozen_desc, self.src_desc)
        if self.self_mode:
            real = logs["pasted_driving"].tracks[-1]  # the real frame's face, at the output size
            for name, image in (("output", out), ("frozen_source", self.frozen), ("pasted_driving", pasted)):
                logs[name].add_image(image, pasted, with_ssim=judged)
                if real is not None:
                    logs[name].regions.append(region_scores(image, pasted, real.landmarks, with_ssim=judged))

    def result(self) -> dict:
        """{"frames", "driving_faces_missing", "judge_agreement", "metrics", "bounds"} of the report."""
        drv = M.series_from_tracks(self.drv_tracks)
        # Self-reenactment: the pasted frames are the real frames at the output size.
        real = M.series_from_tracks(self.logs["pasted_driving"].tracks) if self.self_mode else None
        geo = M.geometry_rows(self.drv_geometry, len(M.GEOMETRY_SIGNALS))
        metrics = {n: M.candidate_metrics(self.logs[n], drv, real, geo) for n in ("output", *BOUND_NAMES)}
        for name, figures in metrics.items():
            if figures["image"] is not None:
                figures["image"].update(region_means(self.logs[name].regions))
        return {"frames": len(self.drv_tracks), "driving_faces_missing": int((~drv.found).sum()),
                "judge_agreement": M.judge_agreement(drv, geo), "metrics": metrics["output"],
                "bounds": {n: metrics[n] for n in BOUND_NAMES}}


def judge(source: np.ndarray, driving: str, output: str, every: int, self_mode: bool,
          say: Progress, identity: Any | None = None, geometry: Any | None = None) -> dict:
    """Track and judge the output and both bounds frame by frame, in one pass over both videos.

    Args:
        source: The source image (RGB).
        driving: Driving video path.
        output: Output video path (extra frames beyond the driving's are ignored).
        every: Identity network and SSIM on every ``every``-th frame.
        self_mode: Also compare pixels and absolute landmarks with the real (driving) frames.
        say: Progress callback.
        identity: An ``IdentityJudge`` to reuse (None: one is loaded).
        geometry: A ``GeometryJudge`` to reuse (None: one is loaded).

    Returns:
        {"frames", "driving_faces_missing", "judge_agreement", "metrics", "bounds"} of the report.

    Raises:
        NoFaceError: When dlib finds no face in the source.
        InputError: When a video cannot be read.
    """
    step_s = 1.0 / float(video_rate(driving))
    timestamp = StreamTimestamps()
    with ExitStack() as stack:
        judges = _Judges(stack, source, every, self_mode, identity, geometry)
        # Not strict: a full-length --output is judged against a driving clip cut to --max-frames.
        pairs = zip(iter_frames(driving, "driving video"), iter_frames(output, "output video"), strict=False)
        for i, (drv, out) in enumerate(pairs):
            judges.frame(i, timestamp(i * step_s), drv, out)
            if i % 50 == 49:
                say(f"  frame {i + 1}")
        return judges.result()


def _fit(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` letterboxed into ``shape``'s height and width.

    Not stretched: a distorted face would be read by the tracker as expression, and the bounds
    must see the face undistorted.
    """
    return letterbox(image, (shape[1], shape[0]))


def write_video(path: str, frames: Any, rate: Fraction) -> int:
    """Write RGB frames (all of one even size) to ``path`` (H.264 CRF 12, no audio); returns how many."""
    import av

    written = 0
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for rgb in frames:
            if written == 0:
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
            written += 1
        out.mux(stream.encode(None))
    return written
