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

# Builds one face's engine: (the portrait with that face chosen, the measure of its edit).
OpenEngine = Callable[[Portrait, Measure | None], ReenactmentEngine]


def open_faces(spec: FacesSpec, portrait: Portrait, open_engine: OpenEngine, *, tracker: Tracker | None,
               max_faces: int, background: bool) -> FaceGroup:
    """One engine per chosen face of ``portrait``, as a ``FaceGroup``.

    A face that cannot be prepared (its crop falls outside the image, its landmarks are broken)
    is left as it is in the source and named in ``FaceGroup.describe``; when no face can be, the
    first face's error is raised.

    Args:
        spec: ``faces``: ``all`` or face numbers.
        portrait: The tracked portrait (``faces`` holds every face found, largest first).
        open_engine: Builds one face's engine.
        tracker: Checks each face's expression edit on the edited still (None: not checked).
        max_faces: ``tracker.max_faces`` (named in the error when the tracker may have stopped short).
        background: ``--background`` is set (it replaces the whole frame around one person).

    Raises:
        InputError: A face number beyond the faces found.
        ConfigError: ``--background`` with more than one face.
        FacepaintError: Whatever building an engine raises, other than a face that cannot be prepared.
    """
    indices = chosen_faces(spec, len(portrait.faces), portrait.path, max_faces)
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
