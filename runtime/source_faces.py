"""``--faces`` on a video source: the chosen faces of the clip, found in every frame and kept apart.

Every frame is tracked in image mode (MediaPipe's video mode follows one face only), which
reports up to ``tracker.max_faces`` faces, largest first. The faces are numbered in the *base*
frame, as ``--faces`` numbers a photo's (0 = largest): the first frame where every chosen face is
found. From there each chosen face is followed forwards and backwards through the clip: in each
frame it is the detection nearest its last known place (``match_faces``). A face not found in a
frame (covered, turned away, out of the picture for a while) has no face there, and its engine
leaves it as it is in that frame; the others are rendered. Each face's track is then smoothed
as the single-face track is (``source_track``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from facepaint.engine.errors import InputError, NoFaceError
from facepaint.engine.faces import FacesSpec
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Tracker
from facepaint.runtime.source_track import (
    SourceTrack,
    check_length,
    open_source_video,
    smoothed,
    source_frames,
    track_source,
)

# A face is the same face in the next frame when its centre moved less than this many face widths
# and its width changed by less than this factor: a head moves far less than its own width in one
# frame at 25-30 fps, and two people side by side are a face width or more apart.
MAX_SHIFT = 0.5
MAX_GROWTH = 1.5
# With ``--faces all`` the clip's face count is the most faces found in at least this many frames:
# a face-like pattern detected in a frame or two does not become a face to animate.
MIN_FRAMES_SEEN = 3


def track_clip(path: str, tracker: Tracker, faces: FacesSpec | None, limit: int | None = None) -> SourceTrack:
    """The source video tracked for its largest face (``faces`` None: ``track_source``) or for
    the chosen faces (``track_source_faces``)."""
    if faces is None:
        return track_source(path, tracker, limit)
    return track_source_faces(path, tracker, faces, limit)


def track_source_faces(path: str, tracker: Tracker, spec: FacesSpec, limit: int | None = None) -> SourceTrack:
    """Track the faces ``spec`` chooses through the source video (see the module).

    Returns:
        The track: ``members`` maps each chosen face number to its smoothed faces, ``found`` holds
        every face of the base frame (largest first), ``faces`` the largest chosen face present in
        each frame (None: none of them).

    Raises:
        InputError: Unreadable, shorter than ``MIN_SOURCE_S``, changing resolution, or a face
            number beyond the faces found in any frame.
        NoFaceError: No face in any frame.
    """
    with contextlib.closing(open_source_video(path)) as video:
        rate, size, audio = video.rate, video.size, video.audio
        if video.frame_count is not None:  # the header's count: refused before any tracking
            check_length(path, video.frame_count, float(rate))
    found: list[list[FaceTrack]] = []
    for index, image in enumerate(source_frames(path, size)):
        if limit is not None and index >= limit:
            break
        found.append(list(tracker.track(image, None)))
    if limit is None or len(found) < limit:
        check_length(path, len(found), float(rate))
    base, numbers = base_frame(found, spec, path)
    chains = match_faces(found, base, numbers)
    members = {n: smoothed(chain) for n, chain in zip(numbers, chains, strict=True)}
    faces = tuple(next((members[n][i] for n in numbers if members[n][i] is not None), None)
                  for i in range(len(found)))
    return SourceTrack(path=path, rate=rate, size=size, faces=faces, audio=audio, members=members,
                       found=tuple(found[base]), base=base)


def base_frame(found: Sequence[Sequence[FaceTrack]], spec: FacesSpec, path: str) -> tuple[int, tuple[int, ...]]:
    """(the base frame, the chosen face numbers): the first frame where every chosen face is found.

    Raises:
        NoFaceError: No face in any frame.
        InputError: A face number beyond the most faces found in any frame.
    """
    counts = np.array([len(faces) for faces in found])
    most = int(counts.max(initial=0))
    if most == 0:
        raise NoFaceError(f"no face found in any frame of the source video {path}; use a clip with a clearly "
                          "visible face")
    if isinstance(spec, str):  # "all", checked by check_faces
        seen = [n for n in range(1, most + 1) if (counts >= n).sum() >= min(MIN_FRAMES_SEEN, len(found))]
        numbers = tuple(range(max(seen, default=1)))
    else:
        numbers = tuple(spec)
        if max(numbers) >= most:
            count = f"{most} face" + ("s" if most != 1 else "")
            raise InputError(f"--faces {','.join(map(str, numbers))} is out of range: at most {count} found in a "
                             f"frame of {path} (use 0..{most - 1} or all, 0 = largest)")
    need = max(numbers) + 1
    return int(np.argmax(counts >= need)), numbers


def match_faces(found: Sequence[Sequence[FaceTrack]], base: int, numbers: Sequence[int]
                ) -> list[list[FaceTrack | None]]:
    """Each chosen face's detection in every frame (None: not found there), followed from ``base``
    forwards and backwards: in each frame the pairs (face, detection) nearest in face widths are
    taken first, each detection once, and a face keeps its last known place while it is missing."""
    chains: list[list[FaceTrack | None]] = [[None] * len(found) for _ in numbers]
    for k, n in enumerate(numbers):
        chains[k][base] = found[base][n]
    for frames in (range(base + 1, len(found)), range(base - 1, -1, -1)):
        last = [found[base][n] for n in numbers]
        for i in frames:
            for k, j in _nearest_pairs(last, found[i]):
                chains[k][i] = last[k] = found[i][j]
    return chains


def _nearest_pairs(last: Sequence[FaceTrack], now: Sequence[FaceTrack]) -> list[tuple[int, int]]:
    """(face, detection) pairs close enough to be one face (``MAX_SHIFT``, ``MAX_GROWTH``), nearest first."""
    boxes = [centre_width(face) for face in last]
    pairs = []
    for k, (centre, width) in enumerate(boxes):
        for j, face in enumerate(now):
            c, w = centre_width(face)
            shift = float(np.linalg.norm(c - centre)) / width
            if shift < MAX_SHIFT and 1 / MAX_GROWTH < w / width < MAX_GROWTH:
                pairs.append((shift, k, j))
    taken_k: set[int] = set()
    taken_j: set[int] = set()
    out = []
    for _, k, j in sorted(pairs):
        if k not in taken_k and j not in taken_j:
            taken_k.add(k)
            taken_j.add(j)
            out.append((k, j))
    return out


def centre_width(face: FaceTrack) -> tuple[np.ndarray, float]:
    """A face's landmark centre (x, y) and width (at least 1 px)."""
    points = np.asarray(face.landmarks, np.float64)[:, :2]
    return points.mean(0), max(float(np.ptp(points[:, 0])), 1.0)
