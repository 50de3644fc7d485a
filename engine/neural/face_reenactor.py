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

from facepaint.engine.errors import ConfigError, FacepaintError
from facepaint.engine.face_reenactor import GeometricFaceReenactor, Reenacted, ReenactorConfig
from facepaint.engine.landmark_transformer import TargetShape
from facepaint.engine.neural.align import align_matrix, align_params, apply_affine, warp_to_square
from facepaint.engine.neural.generator import CoarseToFineGenerator
from facepaint.engine.neural.inputs import CoarseWarp, heatmaps, to_tensor_layout
from facepaint.engine.neural.model_files import load_generator
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import ModelConfig

_EDGE = 0.06  # the correction fades out over this fraction of the square at its border


class NeuralFaceReenactor:
    """The generator's face at the target shape, in the source crop.

    Args:
        source: The prepared source face (MediaPipe topology).
        config: Reenactor settings (``interpolation`` is used by the full-resolution warp).
        model: Weights folder (None: the shipped weights), backend (torch only), device and
            precision; None: the ``ModelConfig`` defaults.

    Raises:
        ConfigError: When the source was tracked with another landmark layout, or the backend,
            device or precision asked for cannot run this stage.
        ModelError: When the weights are missing or fail their checksum.
    """

    def __init__(self, source: SourceFace, config: ReenactorConfig, model: ModelConfig | None = None) -> None:
        if source.topology.name != "mediapipe478":
            raise ConfigError("the neural reenactor needs the MediaPipe tracker's 478 landmarks; "
                              "use --tracker mediapipe or --reenactor geometric")
        model = model or ModelConfig()
        self.source = source
        self.config = config
        self.device, self.dtype = _placement(model)
        gen = load_generator(model.weights, str(self.device)).to(self.dtype)
        self.gen: CoarseToFineGenerator | None = gen
        size = gen.config.size
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
        x = torch.from_numpy(to_tensor_layout(self.square, coarse, heatmaps(lm, self.size))[None])
        x = x.to(self.device, self.dtype)
        if self.gen is None:
            raise FacepaintError("this neural reenactor is closed")
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
        # The crop keeps its (warped) background, as the geometric reenactor's does: no mask for
        # the mixer. The predicted person mask is kept for a mixer that wants it.
        self.person_mask = cv2.warpAffine(person * self._edge, self.matrix, self._crop_size, flags=flags,
                                          borderMode=cv2.BORDER_CONSTANT)
        return Reenacted(image, None, base.map_x, base.map_y, 0.0)

    def close(self) -> None:
        """Drop the generator (device memory); later renders fail."""
        self.gen = None


def _placement(model: ModelConfig) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) for ``model``, or ConfigError for what this stage cannot do."""
    if model.backend not in ("torch", "auto"):
        raise ConfigError(f"the neural reenactor runs on the torch backend only, not '{model.backend}'; "
                          "use --backend torch")
    name = model.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available; use --device cpu")
    device = torch.device(name)
    if model.precision == "fp16":
        if device.type == "cuda":
            return device, torch.float16
        if not model.allow_fp32:
            raise ConfigError("fp16 on the CPU is not supported by the neural reenactor; use --precision fp32 "
                              "or add --allow-fp32")
    return device, torch.float32
