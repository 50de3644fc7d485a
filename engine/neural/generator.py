"""CoarseToFineGenerator: pix2pixHD's global generator, small, with encoder skips.

It takes the ``inputs`` tensor (source crop, coarse warp, target heatmaps) and predicts a
correction of the coarse warp: ``face = coarse + residual``, with the residual head initialised to
zero, so training starts from the warp and the net learns to paint where a warp cannot be right
(mouth interior, teeth, closed lids, uncovered background). A predicted blend
(``coarse + alpha * (image - coarse)``) was tried first and dropped: its sigmoid saturated at
alpha = 0 within 25 steps of an overfitting probe (the warp is the better guess almost everywhere at first),
after which nothing trained. A second head predicts face / hair / background logits.
pix2pixHD's local enhancer (a 2x branch) is not built: the engine adds the generator's
correction to the full-resolution warp instead (``face_reenactor``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import torch
from torch import nn

from facepaint.engine.errors import ModelError
from facepaint.engine.neural.inputs import IN_CHANNELS

SEG_CLASSES = ("background", "face", "hair")


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the generator (saved beside its weights).

    Attributes:
        size: Crop side it was trained at.
        width: Channels of the first level (doubling per level).
        levels: Down-sampling levels.
        blocks: Residual blocks at the bottom.
    """

    size: int = 128
    width: int = 16
    levels: int = 3
    blocks: int = 4

    def __post_init__(self) -> None:
        if self.size % (2 ** self.levels) or not 8 <= self.width <= 128 or not 1 <= self.levels <= 5:
            raise ValueError("size must divide by 2**levels, width in [8, 128], levels in [1, 5]")
        if not 0 <= self.blocks <= 16:
            raise ValueError("blocks must be in [0, 16]")

    def digest(self) -> str:
        """sha256 of the architecture, stored with weights and checked at load."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2), nn.LeakyReLU(0.2, inplace=True))


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * self.body(x)


class CoarseToFineGenerator(nn.Module):
    """Generator: (B, IN_CHANNELS, S, S) -> face RGB (B, 3, S, S) (about [-1, 1]; clip for display),
    seg logits (B, 3, S, S), residual (B, 3, S, S).

    Args:
        config: Architecture.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        chans = [w * 2 ** i for i in range(config.levels + 1)]
        self.stem = _conv(IN_CHANNELS, w, 5)
        self.down = nn.ModuleList(_conv(chans[i], chans[i + 1], 4, 2) for i in range(config.levels))
        self.blocks = nn.Sequential(*(_ResBlock(chans[-1]) for _ in range(config.blocks)))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                          _conv(chans[i + 1], chans[i]))
            for i in reversed(range(config.levels))
        )
        self.fuse = nn.ModuleList(_conv(chans[i] * 2, chans[i]) for i in reversed(range(config.levels)))
        self.head = nn.Conv2d(w, 3 + len(SEG_CLASSES), 3, 1, 1)
        bias = self.head.bias
        if bias is None:  # nn.Conv2d has one unless bias=False: narrows the type
            raise ModelError("the generator's head conv has no bias to zero")
        with torch.no_grad():
            self.head.weight[:3].zero_()
            bias[:3].zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """See the class docstring."""
        coarse = x[:, 3:6]
        skips = []
        h = self.stem(x)
        for down in self.down:
            skips.append(h)
            h = down(h)
        h = self.blocks(h)
        for up, fuse in zip(self.up, self.fuse, strict=True):
            h = fuse(torch.cat([up(h), skips.pop()], 1))
        out = self.head(h)
        residual = out[:, :3]
        return coarse + residual, out[:, 3:], residual


def build_generator(**config: int) -> CoarseToFineGenerator:
    """The generator for a ``GeneratorConfig`` given as keywords (the backends' architecture factory)."""
    return CoarseToFineGenerator(GeneratorConfig(**config))
