"""Face parameters shared by the trackers: blendshapes → AUs, pose angles, and 68-point geometry.

* ``AU_TABLE`` maps MediaPipe's blendshapes to the 17 AU intensities of FACEGAN's 20-d vector.
* ``angles_from_rotation`` turns a head rotation matrix into the yaw/pitch/roll convention of
  ``facepaint.engine.track.FaceTrack``.
* ``blendshapes_from_ibug68`` estimates the few blendshapes that 68 landmarks can show (blinks,
  jaw, smile, brows) for trackers that have no blendshape model.
"""

from __future__ import annotations

import numpy as np

from facepaint.engine.track import BLENDSHAPE_NAMES

# Each AU is the largest of its groups; a group is the mean of its blendshapes (left/right pairs).
# Intensities are the blendshape activations in [0, 1] times 5, OpenFace's intensity range.
AU_TABLE: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("AU01", (("browInnerUp",),)),  # inner brow raiser
    ("AU02", (("browOuterUpLeft", "browOuterUpRight"),)),  # outer brow raiser
    ("AU04", (("browDownLeft", "browDownRight"),)),  # brow lowerer
    ("AU05", (("eyeWideLeft", "eyeWideRight"),)),  # upper lid raiser
    ("AU06", (("cheekSquintLeft", "cheekSquintRight"),)),  # cheek raiser
    ("AU07", (("eyeSquintLeft", "eyeSquintRight"),)),  # lid tightener
    ("AU09", (("noseSneerLeft", "noseSneerRight"),)),  # nose wrinkler
    ("AU10", (("mouthUpperUpLeft", "mouthUpperUpRight"),)),  # upper lip raiser
    ("AU12", (("mouthSmileLeft", "mouthSmileRight"),)),  # lip corner puller
    ("AU14", (("mouthDimpleLeft", "mouthDimpleRight"),)),  # dimpler
    ("AU15", (("mouthFrownLeft", "mouthFrownRight"),)),  # lip corner depressor
    ("AU17", (("mouthShrugLower",),)),  # chin raiser
    ("AU20", (("mouthStretchLeft", "mouthStretchRight"),)),  # lip stretcher
    ("AU23", (("mouthPressLeft", "mouthPressRight"), ("mouthPucker",))),  # lip tightener
    ("AU25", (("jawOpen",), ("mouthLowerDownLeft", "mouthLowerDownRight"))),  # lips part
    ("AU26", (("jawOpen",),)),  # jaw drop
    ("AU45", (("eyeBlinkLeft", "eyeBlinkRight"),)),  # blink
)
AU_MAX = 5.0


def _au_weights() -> tuple[np.ndarray, np.ndarray]:
    """(G, 52) averaging weights of every group and (G,) the AU index each group belongs to."""
    rows, owner = [], []
    for au_index, (_, groups) in enumerate(AU_TABLE):
        for group in groups:
            row = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
            row[[BLENDSHAPE_NAMES.index(n) for n in group]] = 1.0 / len(group)
            rows.append(row)
            owner.append(au_index)
    return np.stack(rows), np.asarray(owner)


_GROUP_WEIGHTS, _GROUP_OWNER = _au_weights()


def au_vector(blendshapes: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """FACEGAN's 20-d vector: the 17 AU intensities of ``AU_TABLE`` in [0, 5], then yaw, pitch, roll.

    Args:
        blendshapes: (52,) in ``BLENDSHAPE_NAMES`` order, values in [0, 1].
        rotation: (3,) yaw, pitch, roll in degrees.

    Returns:
        (20,) float32 in ``facepaint.engine.track.AU_NAMES`` order.
    """
    groups = _GROUP_WEIGHTS @ np.clip(np.asarray(blendshapes, np.float32), 0.0, 1.0)
    aus = np.zeros(len(AU_TABLE), np.float32)
    np.maximum.at(aus, _GROUP_OWNER, groups)
    out = np.concatenate([aus * AU_MAX, np.asarray(rotation, np.float32)])
    return out.astype(np.float32)


def angles_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees from a head rotation in camera space (x right, y up, z to viewer).

    The rotation maps a frontal face model (nose along +z) into camera space, as MediaPipe's facial
    transformation matrix does. It is decomposed as R = Ry(a) Rx(b) Rz(c); the signs are then
    flipped to ``FaceTrack``'s convention: yaw > 0 when the face turns to the image's left, pitch
    > 0 when it looks up, roll > 0 when the head tilts clockwise in the image.

    Args:
        rotation: (3, 3) rotation matrix (the upper-left block of a 4x4 pose is fine).

    Returns:
        (3,) float32 yaw, pitch, roll in degrees.
    """
    # The nearest rotation, in case the matrix carries a scale (a Procrustes fit may).
    u, _, vt = np.linalg.svd(np.asarray(rotation, np.float64)[:3, :3])
    r = u @ vt
    a = np.arctan2(r[0, 2], r[2, 2])
    b = -np.arcsin(np.clip(r[1, 2], -1.0, 1.0))
    c = np.arctan2(r[1, 0], r[1, 1])
    return np.degrees([-a, -b, -c]).astype(np.float32)


# Linear ramps (value at 0, value at 1) of geometric features in inter-ocular units, fitted against
# MediaPipe's blendshapes on the mesh's 68-point subset (facepaint.engine.topology.IBUG68_FROM_MESH)
# of four driving clips (lp_d3/d10/d12/d18): r = 0.79-0.99 for blinks, jaw and smile. Brow heights
# differ between people, so the brow estimates are rough without a neutral reference.
_RAMPS = {
    "blink": (0.32, 0.05),  # eye aspect ratio: open .. closed
    "jaw": (0.02, 0.45),  # inner-lip gap
    "corner": (0.0, 0.14),  # lip corners above the mouth centre
    "width": (0.52, 0.82),  # mouth width
    "inner_brow": (0.30, 0.42),  # inner brow above the inner eye corner
    "outer_brow": (0.22, 0.30),  # outer brow above the outer eye corner
    "brow_down": (0.30, 0.18),  # inner brow height, lowered
}


def _ramp(x: np.ndarray | float, key: str) -> np.ndarray:
    lo, hi = _RAMPS[key]
    return np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 0.0, 1.0)


def face_frame(points: np.ndarray) -> np.ndarray:
    """68 points rotated so the outer eye corners are level, in inter-ocular units, y down."""
    p = np.asarray(points, np.float64)[:, :2]
    eye_line = p[45] - p[36]
    scale = max(float(np.hypot(*eye_line)), 1e-6)
    c, s = eye_line / scale
    unrotate = np.array([[c, s], [-s, c]])
    return (p - p[27]) @ unrotate.T / scale


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """Soukupová and Čech's eye aspect ratio of six eye points (corner, 2 upper, corner, 2 lower)."""
    vertical = np.hypot(*(eye[1] - eye[5])) + np.hypot(*(eye[2] - eye[4]))
    return float(vertical / max(2.0 * np.hypot(*(eye[0] - eye[3])), 1e-6))


def blendshapes_from_ibug68(points: np.ndarray) -> np.ndarray:
    """Estimate blendshapes from 68 iBUG landmarks; the ones geometry cannot show stay 0.

    Estimated: eyeBlink (eye aspect ratio), jawOpen (inner-lip gap), mouthSmile (lip corners raised
    and mouth widened), browInnerUp, browOuterUp and browDown (brow height over the eye corners).
    MediaPipe's "Left" is the subject's left, which is the eye at points 42-47.

    Args:
        points: (68, 2 or 3) landmarks in pixels.

    Returns:
        (52,) float32 in ``BLENDSHAPE_NAMES`` order.
    """
    q = face_frame(points)
    mouth_mid = (q[62, 1] + q[66, 1]) / 2.0
    width = _ramp(q[54, 0] - q[48, 0], "width")
    values = {
        "eyeBlinkRight": _ramp(eye_aspect_ratio(q[36:42]), "blink"),
        "eyeBlinkLeft": _ramp(eye_aspect_ratio(q[42:48]), "blink"),
        "jawOpen": _ramp(q[66, 1] - q[62, 1], "jaw"),
        "mouthSmileRight": (_ramp(mouth_mid - q[48, 1], "corner") + width) / 2.0,
        "mouthSmileLeft": (_ramp(mouth_mid - q[54, 1], "corner") + width) / 2.0,
        "browInnerUp": _ramp((q[39, 1] - q[21, 1] + q[42, 1] - q[22, 1]) / 2.0, "inner_brow"),
        "browOuterUpRight": _ramp(q[36, 1] - q[17, 1], "outer_brow"),
        "browOuterUpLeft": _ramp(q[45, 1] - q[26, 1], "outer_brow"),
        "browDownRight": _ramp(q[39, 1] - q[21, 1], "brow_down"),
        "browDownLeft": _ramp(q[42, 1] - q[22, 1], "brow_down"),
    }
    out = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for name, value in values.items():
        out[BLENDSHAPE_NAMES.index(name)] = value
    return out
