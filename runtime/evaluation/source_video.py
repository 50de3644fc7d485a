"""``eval --source take1.mp4 --driving me.mp4``: a video source judged (issue 22).

The render plays the driving clip once (``--fit cut``), so output frame i goes with the driving
frame shown at its time; those frames are written as a clip at the source's rate ("as shown") and
the usual judges run on it and the output: motion is the driver's, against the output. Identity is
then measured against the source video's own frame i (the person in that frame, in that light and
pose), not against one picture: ``metrics.identity`` is replaced by that figure. The bounds stay
as the judges give them, with the clip's first frame as the frozen source.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.runtime.evaluation import metrics as M
from facepaint.runtime.evaluation.streams import Progress, iter_frames, judge, video_rate, write_video


def video_source_scores(source: str, driving: str, output: str | None, tmp: Path, *, every: int,
                        max_frames: int | None, engine: Any, say: Progress, identity: Any | None,
                        geometry: Any | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(render statistics or None when ``output`` was given, the judged figures) of one pair.

    Raises:
        FacepaintError: What the render or the judges raise.
    """
    from facepaint.runtime.config import build_app_config
    from facepaint.runtime.evaluation.identity import IdentityJudge
    from facepaint.runtime.source_video import render_source_video

    rate = float(video_rate(source))
    stats = None
    if output is None:
        output = str(tmp / "output.mp4")
        layer: dict[str, Any] = {"source": source, "driving": driving, "output": output, "progress": False,
                                 "overwrite": True, "source_video": {"fit": "cut"}, "engine": dict(engine or {})}
        if max_frames is not None:
            layer["duration"] = max_frames / rate
        stats = render_source_video(build_app_config(layer))
    shown = str(tmp / "driving_as_shown.mp4")
    count = write_as_shown(driving, shown, video_rate(source), _frame_count(output))
    first = next(iter_frames(source, "source video"))
    ident = identity if identity is not None else IdentityJudge()
    scored = judge(first, shown, output, every, False, say, ident, geometry)
    scored["metrics"]["identity"] = identity_by_frame(ident, source, output, every, count)
    return stats, scored


def identity_by_frame(ident: Any, source: str, output: str, every: int, count: int) -> dict:
    """AED / CSIM of output frame i against source frame i, every ``every``-th frame."""
    log = M.CandidateLog()
    pairs = zip(range(count), iter_frames(source, "source video"), iter_frames(output, "output video"), strict=False)
    for i, src, out in pairs:
        if i % every == 0:
            log.add_identity(ident.descriptor(out), ident.descriptor(src))
    return M.identity_summary(log.distances, log.similarities)


def _frame_count(path: str) -> int:
    return sum(1 for _ in iter_frames(path, "output video"))


def write_as_shown(driving: str, path: str, rate: Fraction, count: int) -> int:
    """The driving frames shown with output frames 0..count-1 (``--fit cut``), at ``rate``."""
    fps = float(video_rate(driving))

    def shown() -> Iterator[np.ndarray]:
        written = 0
        for j, rgb in enumerate(iter_frames(driving, "driving video")):
            while written < count and math.floor(written / float(rate) * fps + 1e-9) == j:
                yield rgb
                written += 1
            if written >= count:
                return

    return write_video(path, shown(), rate)
