"""``--faces all|0,2``: the chosen faces of the source portrait opened as one ``FaceGroup``.

``--faces`` and ``--face-index`` are kept apart: ``--face-index N`` is the single-face path it
always was (one engine, the face's own render); ``--faces`` (one face or several) goes through
``facepaint.engine.faces``, which composes each face's render onto the shared frame. Both number
the faces the same way, largest first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from facepaint.engine.errors import ConfigError, NoFaceError
from facepaint.engine.faces import FaceGroup, FacesSpec, GroupFace, chosen_faces
from facepaint.engine.reenactment import Measure, ReenactmentEngine
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Tracker
from facepaint.runtime.portrait import Portrait

# Tiles smaller than this are not searched: a face small enough to need one is under ~50 px
# across, too small to animate visibly (and each tile costs one landmarker pass, ~30 ms here).
MIN_TILE = 192
# Builds one face's engine: (the portrait with that face chosen, the measure of its edit).
OpenEngine = Callable[[Portrait, Measure | None], ReenactmentEngine]


def open_faces(spec: FacesSpec, portrait: Portrait, open_engine: OpenEngine, *, tracker: Tracker | None,
               background: bool) -> FaceGroup:
    """One engine per chosen face of ``portrait``, as a ``FaceGroup``.

    A face that cannot be prepared (its crop falls outside the image, its landmarks are broken)
    is left as it is in the source and named in ``FaceGroup.describe``; when no face can be, the
    first face's error is raised.

    Args:
        spec: ``faces``: ``all`` or face numbers.
        portrait: The tracked portrait (``faces`` holds every face found, largest first).
        open_engine: Builds one face's engine.
        tracker: Checks each face's expression edit on the edited still (None: not checked).
        background: ``--background`` is set (it replaces the whole frame around one person).

    Raises:
        InputError: A face number beyond the faces found.
        ConfigError: ``--background`` with more than one face.
        FacepaintError: Whatever building an engine raises, other than a face that cannot be prepared.
    """
    indices = chosen_faces(spec, len(portrait.faces), portrait.path)
    if background and len(indices) > 1:
        raise ConfigError("--background keeps one person and replaces everything else, other faces included; "
                          "give --faces one face number, or drop --background")
    members: list[GroupFace] = []
    unprepared: dict[int, str] = {}
    try:
        for index in indices:
            face = portrait.faces[index]
            one = dataclasses.replace(portrait, face=face, face_index=index)
            measure = measure_face(tracker, face) if tracker is not None else None
            try:
                members.append(GroupFace(index, open_engine(one, measure)))
            except NoFaceError as exc:
                if len(indices) == 1:
                    raise
                unprepared[index] = str(exc)
        if not members:
            raise NoFaceError(f"no chosen face of {portrait.path} could be prepared: {unprepared[indices[0]]}")
        return FaceGroup(portrait.image, members, unprepared)
    except BaseException:
        for member in members:
            member.engine.close()
        raise


def every_face(portrait: Portrait, tracker: Tracker) -> Portrait:
    """``portrait`` with the faces the whole-image pass missed added, largest first.

    MediaPipe's detector sees the image shrunk to 128 px: in a wide group photo the smaller faces
    vanish (two of four portraits side by side at 1818x512 were found). So the image is also
    searched in square tiles (its short side, then half that; half a tile apart), each at full
    resolution; a face found again is kept once, from the whole image or else from the tile
    where it lies furthest from the tile's edges (a face cut by a tile edge is a poor fit).
    """
    image = portrait.image
    height, width = image.shape[:2]
    found: list[tuple[float, FaceTrack]] = [(np.inf, face) for face in portrait.faces]
    for x, y, side in _tiles(width, height):
        for face in tracker.track(np.ascontiguousarray(image[y:y + side, x:x + side]), None):
            moved = face.landmarks.copy()
            moved[:, 0] += x
            moved[:, 1] += y
            margin = _edge_margin(face.landmarks, side, (x, y, width, height))
            found.append((margin, dataclasses.replace(face, landmarks=moved, frame_size=(width, height))))
    kept: list[tuple[float, FaceTrack]] = []
    for margin, face in sorted(found, key=lambda item: -item[0]):
        if not any(_same_face(face, other) for _, other in kept):
            kept.append((margin, face))
    faces = sorted((face for _, face in kept), key=lambda face: face.area, reverse=True)
    return dataclasses.replace(portrait, faces=tuple(faces), face=faces[0], face_index=0)


def _tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of the square tiles searched: the short side and half of it, half a tile apart."""
    tiles = []
    for side in (min(width, height), min(width, height) // 2):
        if side < MIN_TILE:
            break
        if side == width == height:
            continue  # the whole image, searched already
        step = side // 2
        xs = sorted({*range(0, width - side + 1, step), width - side})
        ys = sorted({*range(0, height - side + 1, step), height - side})
        tiles += [(x, y, side) for y in ys for x in xs]
    return tiles


def _edge_margin(landmarks: np.ndarray, side: int, where: tuple[int, int, int, int]) -> float:
    """How far the face's box lies inside its tile, in face sizes (an image edge is no tile edge)."""
    x, y, width, height = where
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    size = float(max(hi - lo))
    gaps = [lo[0] if x > 0 else np.inf, lo[1] if y > 0 else np.inf,
            side - hi[0] if x + side < width else np.inf, side - hi[1] if y + side < height else np.inf]
    return min(gaps) / max(size, 1.0)


def _same_face(a: FaceTrack, b: FaceTrack) -> bool:
    """Whether two detections are one face: centres closer than a third of the smaller face's width."""
    ca, cb = a.landmarks[:, :2].mean(0), b.landmarks[:, :2].mean(0)
    width = min(float(np.ptp(a.landmarks[:, 0])), float(np.ptp(b.landmarks[:, 0])))
    return float(np.linalg.norm(ca - cb)) < width / 3


def measure_face(tracker: Tracker, face: FaceTrack) -> Measure:
    """The ``measure`` of one face's engine: the blendshapes of the face ``tracker`` finds nearest
    to ``face`` in a still (the largest face would be another person's for all but one engine)."""
    centre = np.asarray(face.landmarks, np.float64)[:, :2].mean(0)

    def measure(image: np.ndarray) -> np.ndarray | None:
        found = tracker.track(image, None)
        if not found:
            return None
        nearest = min(found, key=lambda f: float(np.linalg.norm(np.asarray(f.landmarks)[:, :2].mean(0) - centre)))
        return np.asarray(nearest.blendshapes, np.float64)

    return measure
