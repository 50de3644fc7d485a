"""``eval --source group.jpg|take.mp4 --faces all --driving me.mp4``: every chosen face judged on its own.

The group is rendered as the main command renders it (``--faces``; a video source with ``--fit
cut``). Then each chosen face is cut out of the output as a square around it (``CROP_WIDTHS`` face
widths, following the face from frame to frame in a video source) and judged as a one-face
evaluation is (``streams.judge``): identity against the same square of the source (the still, or
the source video's own frame i), motion against the driver. The report's ``faces`` maps each face
number to those figures; its top-level figures are the first chosen face's (0 = largest).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facepaint.engine.faces import FacesSpec, chosen_faces
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import load_plugin
from facepaint.plugins.sources.image import read_image
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.runtime.evaluation.source_video import identity_by_frame, write_as_shown
from facepaint.runtime.evaluation.streams import Progress, iter_frames, judge, trim_video, video_rate, write_video
from facepaint.runtime.source_faces import centre_width, track_source_faces

# The judged square, in face widths (the width of the landmarks): the head with its hair and chin;
# two people side by side stand two widths or more apart, so a neighbour shows at most as a sliver
# at the edge, smaller than the face judged (the judges take the largest face).
CROP_WIDTHS = 1.8


@dataclasses.dataclass(frozen=True)
class FacePlaces:
    """Where each chosen face is: its square's side and its centre in every source frame."""

    side: dict[int, int]
    centres: dict[int, list[np.ndarray]]


def faces_scores(source: str, driving: str, output: str | None, tmp: Path, *, spec: FacesSpec, every: int,
                 max_frames: int | None, engine: Any, say: Progress, identity: Any | None,
                 geometry: Any | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(render statistics or None when ``output`` was given, the judged figures with ``faces``).

    Raises:
        FacepaintError: What the render, the tracking or the judges raise (a face number beyond
            the faces found included).
    """
    from facepaint.runtime.evaluation.identity import IdentityJudge
    from facepaint.runtime.source_track import is_video_source

    video = is_video_source(source)
    shown = driving
    if max_frames is not None and not video:
        shown = str(tmp / "driving.mp4")
        trim_video(driving, shown, max_frames)
    stats = None
    if output is None:
        output = str(tmp / "output.mp4")
        say(f"rendering {Path(driving).name} onto the faces of {Path(source).name}")
        stats = _render(source, shown, output, spec, engine, video, max_frames)
    places = _video_places(source, spec, max_frames) if video else _still_places(source, spec)
    ident = identity if identity is not None else IdentityJudge()
    if video:
        count = sum(1 for _ in iter_frames(output, "output video"))
        shown = str(tmp / "driving_as_shown.mp4")
        count = write_as_shown(driving, shown, video_rate(source), count)
    per_face = {}
    for n in places.side:
        say(f"judging face {n}")
        out_clip = str(tmp / f"face{n}_output.mp4")
        write_video(out_clip, _squares(iter_frames(output, "output video"), places, n), video_rate(output))
        if video:
            src_clip = str(tmp / f"face{n}_source.mp4")
            write_video(src_clip, _squares(iter_frames(source, "source video"), places, n), video_rate(source))
            first = next(iter_frames(src_clip, "source video"))
            scored = judge(first, shown, out_clip, every, False, say, ident, geometry)
            scored["metrics"]["identity"] = identity_by_frame(ident, src_clip, out_clip, every, count)
        else:
            first = next(_squares(iter([read_image(source, "source portrait")]), places, n))
            scored = judge(first, shown, out_clip, every, False, say, ident, geometry)
        per_face[str(n)] = {"square_side": places.side[n], **scored}
    return stats, {**next(iter(per_face.values())), "faces": per_face}


def _render(source: str, driving: str, output: str, spec: FacesSpec, engine: Any, video: bool,
            max_frames: int | None) -> dict[str, Any]:
    from facepaint.runtime.config import build_app_config
    from facepaint.runtime.offline import render_file
    from facepaint.runtime.source_video import render_source_video

    layer: dict[str, Any] = {"source": source, "driving": driving, "output": output, "progress": False,
                             "overwrite": True, "faces": spec if isinstance(spec, str) else list(spec),
                             "engine": dict(engine or {})}
    if not video:
        return render_file(build_app_config(layer))
    layer["source_video"] = {"fit": "cut"}
    if max_frames is not None:
        layer["duration"] = max_frames / float(video_rate(source))
    return render_source_video(build_app_config(layer))


def _still_places(source: str, spec: FacesSpec) -> FacePlaces:
    """The chosen faces of a still, numbered as ``Session`` numbers them (``runtime.faces.every_face``)."""
    from facepaint.runtime.faces import every_face
    from facepaint.runtime.portrait import Portrait, pick_face

    image = read_image(source, "source portrait")
    with contextlib.closing(load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False))) as t:
        found = list(t.track(image, None))
        face, _ = pick_face(found, None, source)
        portrait = every_face(Portrait(source, image, face, tuple(found), 0), t)
    faces = portrait.faces
    return _places({n: [faces[n]] for n in chosen_faces(spec, len(faces), source)})


def _video_places(source: str, spec: FacesSpec, max_frames: int | None) -> FacePlaces:
    """The chosen faces of a source video, tracked as the render tracks them (``runtime.source_faces``)."""
    with contextlib.closing(load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False))) as t:
        track = track_source_faces(source, t, spec, max_frames)
    return _places({n: list(faces) for n, faces in track.members.items()})


def _places(tracks: dict[int, Sequence[FaceTrack | None]]) -> FacePlaces:
    """Each face's square side (from its first face seen) and its centre in every frame (a frame
    without the face keeps the centre of the nearest frame before it, or else after it)."""
    side, centres = {}, {}
    for n, faces in tracks.items():
        seen = [(i, centre_width(face)) for i, face in enumerate(faces) if face is not None]
        side[n] = 2 * round(CROP_WIDTHS * seen[0][1][1] / 2)  # even: H.264 frames
        known = {i: centre for i, (centre, _) in seen}
        last = known[seen[0][0]]
        centres[n] = [last := known.get(i, last) for i in range(len(faces))]
    return FacePlaces(side, centres)


def _squares(frames: Iterator[np.ndarray], places: FacePlaces, n: int) -> Iterator[np.ndarray]:
    """Face ``n``'s square of every frame (a still: the same square of each), shifted to lie inside."""
    centres = places.centres[n]
    for i, image in enumerate(frames):
        h, w = image.shape[:2]
        side = min(places.side[n], h - h % 2, w - w % 2)
        cx, cy = centres[min(i, len(centres) - 1)]
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        yield np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])

