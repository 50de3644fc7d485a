"""Stage 2, neural: the coarse-to-fine generator re-poses the source face (``--reenactor neural``).

Per frame: the target landmarks are moved into the source's face-aligned square (the crop the
generator was trained on, ``align``), the source square is warped to them (the coarse estimate),
and the generator predicts the corrected face and a face / hair / background segmentation. The
output at the source crop's full resolution is the geometric warp of the crop (no mouth or lid
paint: the generator makes those) plus the generator's correction (output minus coarse estimate)
brought back from the square: where the generator agrees with the warp, the full-resolution
detail of the warp is kept; where it paints (mouth interior, teeth, lids), its paint shows.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from facepaint.engine.errors import ConfigError
from facepaint.engine.face_reenactor import GeometricFaceReenactor, Reenacted, ReenactorConfig
from facepaint.engine.landmark_transformer import TargetShape
from facepaint.engine.neural.align import align_matrix, align_params, apply_affine, warp_to_square
from facepaint.engine.neural.inputs import CoarseWarp, heatmaps, to_tensor_layout
from facepaint.engine.neural.model_files import load_generator
from facepaint.engine.source_face import SourceFace

_EDGE = 0.06  # the correction fades out over this fraction of the square at its border


class NeuralFaceReenactor:
    """The generator's face at the target shape, in the source crop.

    Args:
        source: The prepared source face (MediaPipe topology).
        config: Reenactor settings (``interpolation`` is used by the full-resolution warp).
        model: Weights and device (``weights``: a folder or None for the shipped weights;
            ``device``: ``cpu`` or ``cuda``); None: shipped weights on the CPU.

    Raises:
        ConfigError: When the source was tracked with another landmark layout.
        ModelError: When the weights are missing or fail their checksum.
    """

    def __init__(self, source: SourceFace, config: ReenactorConfig, model: object | None = None) -> None:
        if source.topology.name != "mediapipe478":
            raise ConfigError("the neural reenactor needs the MediaPipe tracker's 478 landmarks; "
                              "use --tracker mediapipe or the geometric reenactor")
        self.source = source
        self.config = config
        device = getattr(model, "device", "cpu") or "cpu"
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        self.gen = load_generator(getattr(model, "weights", None), str(self.device))
        size = self.gen.config.size
        self.size = size
        self.matrix = align_matrix(align_params(source.landmarks), size)
        self.square = warp_to_square(source.crop, self.matrix, size)
        self._coarse = CoarseWarp(self.square, apply_affine(self.matrix, source.landmarks))
        plain = dataclasses.replace(config, mouth_fill=False, lid_fill=False, gaze=False)
        self._base = GeometricFaceReenactor(source, plain)
        ramp = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / (_EDGE * size)
        edge = np.clip(ramp, 0.0, 1.0).astype(np.float32)
        self._edge = np.minimum(edge[:, None], edge[None, :])
        self._crop_size = (source.crop.shape[1], source.crop.shape[0])

    def generate(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(generator face, coarse warp, person probability) in the aligned square for target
        ``landmarks`` given in source crop pixels; faces float32 RGB 0..255."""
        lm = apply_affine(self.matrix, landmarks)
        coarse = self._coarse.render(lm)
        x = torch.from_numpy(to_tensor_layout(self.square, coarse, heatmaps(lm, self.size))[None]).to(self.device)
        with torch.inference_mode():
            face, logits, _ = self.gen(x)
            person = 1.0 - torch.softmax(logits.float(), 1)[:, 0]
        face_np = (face[0].float().permute(1, 2, 0).cpu().numpy() + 1.0) * 127.5
        return face_np, coarse.astype(np.float32), person[0].cpu().numpy()

    def render(self, target: TargetShape, frame: np.ndarray | None, driving: np.ndarray | None) -> Reenacted:
        """See ``FaceReenactor.render`` (``frame`` and ``driving`` are not needed)."""
        base = self._base.render(target, None, None)
        face, coarse, person = self.generate(target.landmarks)
        delta = (face - coarse) * self._edge[..., None]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        back = cv2.warpAffine(delta, self.matrix, self._crop_size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
        image = np.clip(base.image.astype(np.float32) + back + 0.5, 0, 255).astype(np.uint8)
        self.last_mask = cv2.warpAffine(person * self._edge, self.matrix, self._crop_size, flags=flags,
                                        borderMode=cv2.BORDER_CONSTANT)
        return Reenacted(image, base.map_x, base.map_y, 0.0)
