"""FACEGAN's background mixer: the reenacted person over the person-removed source background.

``BackgroundMixerNet`` is a small UNet at 64² (the size is in the weights' config) that reads the
reenacted crop inside its person mask and the background, and predicts a correction of their
plain mix and a new mask M; the output is ``M * (mix + correction) + (1 - M) * background``. It
learns where the moved person's edge should fall and how to fill what the moved head uncovered,
which the geometric mix leaves to the inpainting made once at prepare time.

At full resolution only the mask and the (smooth) correction are upsampled: the face and the
background keep every source pixel, so the net's low resolution does not blur the face.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facepaint.engine.backends.choose import check_warm_up
from facepaint.engine.background_mixer import GeometricBackgroundMixer, MixerConfig
from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.face_reenactor import Reenacted
from facepaint.engine.neural.model_files import MIXER, open_stage_model, read_model_spec
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import ModelConfig

# The input mask is clamped to [MASK_FLOOR, 1 - MASK_FLOOR] before its logit: outside the person
# the mix equals the background, so a mask at ~0 would leave the net no gradient to fill the
# uncovered background with (0.001 did not learn in 200 steps; 0.05 does).
MASK_FLOOR = 0.05


def _block(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.SiLU(), nn.Conv2d(b, b, 3, padding=1), nn.SiLU())


class BackgroundMixerNet(nn.Module):
    """Tiny UNet: (face RGB in its mask, mask, background RGB) -> (corrected RGB, mask).

    Args:
        width: Channels of the first level (doubled at each of the ``levels`` downsamplings).
        levels: Number of downsamplings.
        size: Side of the square input it was trained at (the stage resizes crops to it).
    """

    def __init__(self, width: int = 16, levels: int = 3, size: int = 64) -> None:
        super().__init__()
        if not 4 <= width <= 64 or not 1 <= levels <= 5 or size % 2 ** levels or not 32 <= size <= 512:
            raise ConfigError(f"need width in [4, 64], levels in [1, 5], size in [32, 512] divisible by "
                              f"2**levels, got {width}, {levels}, {size}")
        self.size = size
        chans = [width * 2 ** i for i in range(levels + 1)]
        pairs = list(zip(chans[:-1], chans[1:], strict=True))
        self.down = nn.ModuleList([_block(7, chans[0])] + [_block(a, b) for a, b in pairs])
        self.up = nn.ModuleList([_block(b + a, a) for a, b in pairs][::-1])
        self.out = nn.Conv2d(chans[0], 4, 3, padding=1)
        # Starts as the plain mix: no correction, mask logit from the input mask (set in forward).
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)

    def forward(self, face: torch.Tensor, mask: torch.Tensor,
                background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix one batch.

        Args:
            face: (B, 3, H, W) reenacted crop in [0, 1] (H, W divisible by 2**levels).
            mask: (B, 1, H, W) its person mask in [0, 1].
            background: (B, 3, H, W) person-removed background in [0, 1].

        Returns:
            ``(rgb, m)``: (B, 3, H, W) corrected mix in [0, 1] and (B, 1, H, W) mask in [0, 1];
            the output image is ``m * rgb + (1 - m) * background``.
        """
        x = torch.cat([face * mask, mask, background], 1) * 2.0 - 1.0
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([up, skip], 1))
        out = self.out(x)
        # A correction of the plain mix and a change of the input mask's logit: the untrained
        # net is about the geometric mix, and the face only counts inside its mask (in training
        # the unmasked face is the answer).
        logit = torch.logit(mask.clamp(MASK_FLOOR, 1 - MASK_FLOOR)) + 4.0 * out[:, 3:]
        return (composite(face, mask, background) + out[:, :3]).clamp(0.0, 1.0), torch.sigmoid(logit)


def composite(rgb: torch.Tensor, m: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``m * rgb + (1 - m) * background``."""
    return m * rgb + (1.0 - m) * background


class NeuralBackgroundMixer(GeometricBackgroundMixer):
    """``BackgroundMixerNet`` on the crop resized to its size; mask and correction upsampled back.

    The net runs through ``model``'s backend, device and precision (a few ms a frame at 64² on
    this project's CPU); its inputs are made and its outputs used on the host.

    Args:
        source: The prepared source face.
        config: Mixer settings (the geometric feather is not used: the net makes the mask edge).
        model: Where the weights are (``model.weights`` folder holding ``background_mixer.*``,
            or None for the shipped ones), backend, device and precision.

    Raises:
        ModelError / BackendUnavailable / EngineMismatch: If the weights are missing, damaged or
            do not fit, or the backend cannot run here.
    """

    def __init__(self, source: SourceFace, config: MixerConfig, model: ModelConfig) -> None:
        super().__init__(source, config)
        self._size = int(read_model_spec(MIXER, model.weights).config["size"])
        self.chosen = open_stage_model(MIXER, model)
        self.models = (self.chosen.describe(),)
        h, w = source.crop.shape[:2]
        self._side = max(h, w)
        self._bg = _to_tensor(_square(source.background, self._side), self._size)
        # The source over its own background: a NaN or black result is the fp16 overflow.
        rest = Reenacted(source.crop, source.head_mask.astype(np.float32), 0.0)
        check_warm_up(self.chosen.backend.infer(self.net_inputs(rest)), model.precision,
                      f"the background mixer ({self.chosen.describe()})")

    def net_inputs(self, reenacted: Reenacted) -> dict[str, torch.Tensor]:
        """The net's inputs for ``reenacted``: crop, mask and background squared and resized.

        Raises:
            InputError: If the reenactor gave no person mask.
        """
        if reenacted.mask is None:
            raise InputError("the neural background mixer needs the reenactor's person mask; "
                             "this reenactor returned none (use --mixer geometric)")
        face = _to_tensor(_square(reenacted.image, self._side), self._size)
        mask = _to_tensor(_square(reenacted.mask[..., None], self._side), self._size)
        return {"face": face, "mask": mask, "background": self._bg}

    def mix(self, reenacted: Reenacted) -> np.ndarray:
        """See ``BackgroundMixer.mix``.

        Raises:
            InputError: If the reenactor gave no person mask.
        """
        inputs = self.net_inputs(reenacted)
        out = self.chosen.backend.infer(inputs)
        rgb, m = out["rgb"].cpu(), out["alpha"].cpu()
        h, w = reenacted.image.shape[:2]
        m_full = _upsampled(m, self._side)[:h, :w]
        res_full = _upsampled(rgb - composite(inputs["face"], inputs["mask"], self._bg), self._side)[:h, :w]
        bg, a = self.source.background, np.asarray(reenacted.mask, np.float32)
        base = cv2.blendLinear(reenacted.image, bg, a, 1.0 - a)
        corrected = cv2.add(base, np.ascontiguousarray(255.0 * res_full), dtype=cv2.CV_8U)
        m_full = np.ascontiguousarray(m_full[..., 0])
        return cv2.blendLinear(corrected, bg, m_full, 1.0 - m_full)

    def close(self) -> None:
        """Release the net's backend; later frames fail."""
        self.chosen.backend.close()
        super().close()


def _square(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` padded (edge-replicated) at the bottom and right to ``side``²."""
    h, w = img.shape[:2]
    return cv2.copyMakeBorder(img, 0, side - h, 0, side - w, cv2.BORDER_REPLICATE).reshape(side, side, -1)


def _to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    """(side, side, C) uint8 or float in [0, 1] -> (1, C, size, size) float32 in [0, 1]."""
    scale = 1.0 / 255.0 if img.dtype == np.uint8 else 1.0
    small = cv2.resize(img.astype(np.float32) * scale, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small.reshape(size, size, -1)).permute(2, 0, 1)[None].contiguous()


def _upsampled(x: torch.Tensor, side: int) -> np.ndarray:
    """(1, C, s, s) -> (side, side, C) float32, bilinear."""
    up = cv2.resize(x[0].permute(1, 2, 0).numpy(), (side, side), interpolation=cv2.INTER_LINEAR)
    return up.reshape(side, side, -1)
