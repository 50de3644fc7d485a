"""Face-aligned square crops: the frame the neural generator sees, in training and at inference.

The alignment is FFHQ's (eye centres and mouth corners fix centre, scale and roll), so the crop
holds the face, the hair and a band of background around them. Both the training cache and the
neural reenactor build their crops with ``align_params`` and ``align_matrix``; a crop made one way
and fed the other would shift every landmark the generator learnt.
"""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe mesh indices used for the alignment: eye contours (subject's right, left) and the
# outer mouth corners.
_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
_MOUTH_CORNERS = (61, 291)


def align_params(landmarks: np.ndarray) -> np.ndarray:
    """(centre x, centre y, half-side vector x, half-side vector y) of the FFHQ square.

    Args:
        landmarks: (478, 2+) MediaPipe landmarks in pixels.

    Returns:
        (4,) float64: the square's centre and the vector from its centre to the middle of its
        right side (its length is half the side; its angle is the roll). Smoothing these four
        numbers over time gives a steady crop.
    """
    lm = np.asarray(landmarks, np.float64)[:, :2]
    eye_r = lm[list(_RIGHT_EYE)].mean(0)
    eye_l = lm[list(_LEFT_EYE)].mean(0)
    mouth = lm[list(_MOUTH_CORNERS)].mean(0)
    eye_avg = 0.5 * (eye_r + eye_l)
    eye_to_eye = eye_l - eye_r
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= max(np.hypot(*x), 1e-6)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eye_avg + eye_to_mouth * 0.1
    return np.array([centre[0], centre[1], x[0], x[1]])


def align_matrix(params: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) affine from image pixels to a ``size`` square crop described by ``params``."""
    cx, cy, vx, vy = (float(v) for v in params)
    half = max(np.hypot(vx, vy), 1e-6)
    cos, sin = vx / half, vy / half
    s = size / (2.0 * half)
    # Rotate by -roll about the centre, scale, and put the centre in the middle of the crop.
    a = np.array([[cos, sin], [-sin, cos]]) * s
    t = np.array([size / 2.0 - 0.5, size / 2.0 - 0.5]) - a @ np.array([cx, cy])
    return np.concatenate([a, t[:, None]], 1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (n, 2+) moved by a (2, 3) affine; z (if any) scaled by the affine's scale."""
    pts = np.asarray(points, np.float64)
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if pts.shape[1] > 2:
        out[:, 2:] = pts[:, 2:] * np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out


def warp_to_square(image: np.ndarray, matrix: np.ndarray, size: int,
                   border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """``image`` warped by ``matrix`` into a ``size`` square; shrunk first with an area filter
    where the warp shrinks it more than 2x, so fine texture does not alias."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        f = 2.0 * scale
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        matrix = matrix @ np.diag([w / small.shape[1], h / small.shape[0], 1.0])
        image = small
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
