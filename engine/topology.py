"""Landmark topologies: which indices form which facial region, for the 478-point mesh and iBUG 68.

Every engine stage addresses regions through a ``Topology`` so that the same code serves the
MediaPipe mesh and a 68-point tracker. Contours are ordered (closed polygons); lid and lip pairs
are (upper, lower) index pairs facing each other across the opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepaint.engine.errors import ConfigError

# Ordered contours of the MediaPipe face mesh (the canonical FACEMESH_* connection sets, walked).
MESH_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                  400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
                  103, 67, 109)
MESH_LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37,
                   39, 40, 185)
MESH_LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82,
                   81, 80, 191)
# "Right"/"left" are the subject's; the subject's right eye is on the image's left.
MESH_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
MESH_LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MESH_RIGHT_LIDS = ((246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155))
MESH_LEFT_LIDS = ((466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382))
MESH_RIGHT_IRIS = (468, 469, 470, 471, 472)
MESH_LEFT_IRIS = (473, 474, 475, 476, 477)
MESH_RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
MESH_LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
MESH_NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 49, 279)
MESH_INNER_LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402),
                        (310, 318), (415, 324))
# Points that follow the skull, not the expression: forehead, nose bridge, eye corners, temples.
MESH_STABLE = (10, 338, 109, 67, 297, 103, 332, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 234,
               454, 127, 356, 93, 323, 151, 9, 8)

# The standard fixed map from the 478-point mesh to the 68 iBUG points (jaw 17, brows 10, nose 9,
# eyes 12, outer lips 12, inner lips 8), in iBUG order.
IBUG68_FROM_MESH: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)


@dataclass(frozen=True)
class Topology:
    """Index sets of one landmark layout.

    Attributes:
        name: Topology name (``FaceTrack.topology``).
        n_points: Number of landmarks.
        oval: Ordered closed contour around the face (forehead included where the layout has it).
        eyes: Ordered contours of the subject's right then left eye.
        lids: Per eye, (k, 2) (upper, lower) lid index pairs.
        eye_corners: Per eye, the (outer, inner) corner indices.
        irises: Per eye, iris indices (centre first); empty where the layout has none.
        lips_outer: Ordered outer lip contour.
        lips_inner: Ordered inner lip contour.
        lip_pairs: (k, 2) (upper, lower) inner-lip index pairs.
        mouth_corners: (right, left) inner mouth corner indices.
        brows: Right then left brow indices.
        nose: Nose indices.
        stable: Indices that follow the skull only, used to estimate head pose.
        warp: Indices used as warp vertices: every region point but the irises, plus a sparser
            fill, because the triangle count is what the per-frame rasterisation pays for.
    """

    name: str
    n_points: int
    oval: np.ndarray
    eyes: tuple[np.ndarray, np.ndarray]
    lids: tuple[np.ndarray, np.ndarray]
    eye_corners: tuple[np.ndarray, np.ndarray]
    irises: tuple[np.ndarray, np.ndarray]
    lips_outer: np.ndarray
    lips_inner: np.ndarray
    lip_pairs: np.ndarray
    mouth_corners: np.ndarray
    brows: tuple[np.ndarray, np.ndarray]
    nose: np.ndarray
    stable: np.ndarray
    warp: np.ndarray


def _a(seq) -> np.ndarray:
    return np.asarray(seq, dtype=np.int64)


def _mesh_warp_points() -> np.ndarray:
    # No iris points: warping the eyeball bends the iris into a wedge; the reenactor moves the
    # iris rigidly instead.
    regions = (MESH_FACE_OVAL, MESH_LIPS_OUTER, MESH_LIPS_INNER, MESH_RIGHT_EYE, MESH_LEFT_EYE,
               MESH_RIGHT_BROW, MESH_LEFT_BROW, MESH_NOSE, MESH_STABLE, IBUG68_FROM_MESH,
               range(0, 468, 3))
    return _a(sorted({i for region in regions for i in region}))


def _mesh478() -> Topology:
    return Topology(
        name="mediapipe478", n_points=478, oval=_a(MESH_FACE_OVAL),
        eyes=(_a(MESH_RIGHT_EYE), _a(MESH_LEFT_EYE)),
        lids=(_a(MESH_RIGHT_LIDS), _a(MESH_LEFT_LIDS)),
        eye_corners=(_a((33, 133)), _a((263, 362))),
        irises=(_a(MESH_RIGHT_IRIS), _a(MESH_LEFT_IRIS)),
        lips_outer=_a(MESH_LIPS_OUTER), lips_inner=_a(MESH_LIPS_INNER),
        lip_pairs=_a(MESH_INNER_LIP_PAIRS), mouth_corners=_a((78, 308)),
        brows=(_a(MESH_RIGHT_BROW), _a(MESH_LEFT_BROW)), nose=_a(MESH_NOSE), stable=_a(MESH_STABLE),
        warp=_mesh_warp_points(),
    )


def _ibug68() -> Topology:
    # The jaw line closed over the brows stands in for the oval, which iBUG lacks above the brows.
    return Topology(
        name="ibug68", n_points=68, oval=_a(list(range(17)) + list(range(26, 16, -1))),
        eyes=(_a(range(36, 42)), _a(range(42, 48))),
        lids=(_a(((37, 41), (38, 40))), _a(((44, 46), (43, 47)))),
        eye_corners=(_a((36, 39)), _a((45, 42))),
        irises=(_a(()), _a(())),
        lips_outer=_a(range(48, 60)), lips_inner=_a(range(60, 68)),
        lip_pairs=_a(((61, 67), (62, 66), (63, 65))), mouth_corners=_a((60, 64)),
        brows=(_a(range(17, 22)), _a(range(22, 27))), nose=_a(range(27, 36)),
        stable=_a((0, 1, 15, 16, 17, 21, 22, 26, 27, 28, 29, 30, 31, 35, 36, 39, 42, 45)),
        warp=_a(range(68)),
    )


_BUILDERS = {"mediapipe478": _mesh478, "ibug68": _ibug68}
_CACHE: dict[str, Topology] = {}


def get_topology(name: str) -> Topology:
    """Return the ``Topology`` called ``name``.

    Raises:
        ConfigError: If ``name`` is not a known topology.
    """
    if name not in _BUILDERS:
        raise ConfigError(f"unknown landmark topology '{name}'; expected one of {sorted(_BUILDERS)}")
    if name not in _CACHE:
        _CACHE[name] = _BUILDERS[name]()
    return _CACHE[name]
