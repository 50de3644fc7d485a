"""The mouth net (``mouth_fill = "neural"``): a small UNet that paints the inner mouth in a 64 px
mouth-aligned square, and the inputs it reads, built the same way in training and in the engine.

The square (``square_affine``) is centred on the outer lips, turned with the line of the mouth
corners and ``SIDE`` inner-mouth widths wide, so every mouth is seen at one size and angle.
Inputs (``IN_CHANNELS``, [-1, 1] images): the unpainted warp of the portrait at the target shape
(RGB), the portrait's own mouth square (RGB), soft masks of the target's and the portrait's inner
lips, and the driver's interior as a blurred luminance layout relative to the driver's own lips
(where the teeth bands, the dark cavity and the tongue are; no colour, so the colour can only come
from the portrait) with a channel saying whether it is there (an expression edit has no driver).
Out: RGB and an alpha held inside the target's inner lips, dilated a little, so the lips and skin
keep the portrait's own pixels: ``out = alpha * rgb + (1 - alpha) * warp``.

Two forms (``full_res``). False (the shipped weights): a strided stem to half resolution, the RGB
a residual on the warp, upsampled and refined by one small full-resolution convolution: soft, and
the residual cannot cancel a smiling portrait's teeth stretched into vertical streaks. True (not
trained to the end yet): the input folded into 2x2 blocks (``pixel_unshuffle``, 4x the channels at
half the side) and the output unfolded the same way (``pixel_shuffle``), so every output pixel has
its own value at full resolution for the same cost; the RGB is painted (tanh), not a residual, so
where the warp is wrong the alpha replaces it whole and where it is right the alpha keeps it sharp.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facepaint.engine.errors import ConfigError
from facepaint.engine.geometry import affine_fit, soft_polygon
from facepaint.engine.topology import Topology

SIDE = 1.6  # the square's side in inner-mouth widths (a wide-open mouth is about 0.8 widths tall)
IN_CHANNELS = 10
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# The median lips colour (chromaticity, r + g + b = 1) over the 60 train clips (bench/lips_colour.py).
# The driver's layout divides each channel by its own lips' median and multiplies by this before the
# luma: a camera's white balance (a gain per channel) cancels exactly, a driver whose lips have this
# colour gets the plain luma-over-lips layout the net was trained on, and a greyscale driver gets
# that same layout too (its lips are grey, every channel divides alike).
LIPS = np.array([0.475, 0.268, 0.263], np.float32)
_LAYOUT_WEIGHTS = LUMA * LIPS / float(LUMA @ LIPS)
LAYOUT_BLUR = 1.2 / 64  # the layout's Gaussian sigma, in square sides (the bands, not the texture)
ALPHA_GROW = 3  # the alpha's reach past the target inner-lip mask, in pixels of a 64 px square


def _conv(a: int, b: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 3, stride, 1), nn.SiLU())


class MouthNet(nn.Module):
    """(inputs) -> (rgb in [-1, 1], alpha in [0, 1] inside the dilated target inner lips).

    Args:
        width: Channels of the half-resolution level (doubled at each of the ``levels`` further
            downsamplings).
        levels: Downsamplings below half resolution.
        size: Side of the square it was trained at.
        full_res: The full-resolution form (see the module notes).
    """

    def __init__(self, width: int = 16, levels: int = 3, size: int = 64, full_res: bool = False) -> None:
        super().__init__()
        if not 4 <= width <= 64 or not 1 <= levels <= 4 or size % 2 ** (levels + 1) or not 32 <= size <= 256:
            raise ConfigError(f"need width in [4, 64], levels in [1, 4], size in [32, 256] divisible by "
                              f"2**(levels + 1), got {width}, {levels}, {size}")
        self.size, self.full_res = size, full_res
        chans = [width * 2 ** i for i in range(levels + 1)]
        self.stem = _conv(4 * IN_CHANNELS, chans[0]) if full_res else _conv(IN_CHANNELS, chans[0], 2)
        pairs = list(zip(chans[:-1], chans[1:], strict=True))
        self.down = nn.ModuleList(nn.Sequential(_conv(a, b, 2), _conv(b, b)) for a, b in pairs)
        self.up = nn.ModuleList(_conv(b + a, a) for a, b in pairs[::-1])
        self.head = nn.Conv2d(chans[0], 16 if full_res else 4, 3, padding=1)
        if not full_res:
            self.refine = nn.Sequential(_conv(4 + IN_CHANNELS, 8), nn.Conv2d(8, 4, 3, padding=1))
            return
        bias = self.head.bias
        assert bias is not None  # nn.Conv2d's default
        with torch.no_grad():
            # pixel_shuffle reads output channel c from head channels 4c..4c+3: the alpha's start
            # near 0.1, so an untrained net mostly keeps the warp.
            bias[12:].fill_(-2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paint one batch of (B, IN_CHANNELS, size, size) inputs (``net_inputs``)."""
        h = self.stem(F.pixel_unshuffle(x, 2) if self.full_res else x)
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            h = block(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skip], 1))
        region = F.max_pool2d(x[:, 6:7], 2 * ALPHA_GROW + 1, 1, ALPHA_GROW)
        if self.full_res:
            out = F.pixel_shuffle(self.head(h), 2)
            return torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:]) * region
        coarse = F.interpolate(self.head(h), size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = coarse + self.refine(torch.cat([coarse, x], 1))
        # The warp is the starting point: a residual on it, so the untrained net changes little.
        rgb = (x[:, :3] + out[:, :3]).clamp(-1.0, 1.0)
        return rgb, torch.sigmoid(out[:, 3:]) * region


def composite(rgb: torch.Tensor, alpha: torch.Tensor, warp: torch.Tensor) -> torch.Tensor:
    """``alpha * rgb + (1 - alpha) * warp``."""
    return alpha * rgb + (1.0 - alpha) * warp


def square_affine(landmarks: np.ndarray, topo: Topology, size: int) -> np.ndarray:
    """(2, 3) affine from image pixels to the mouth square of ``landmarks`` (see the module notes)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    centre = lm[topo.lips_outer].mean(0)
    a, b = lm[topo.mouth_corners[0]], lm[topo.mouth_corners[1]]
    d = b - a if b[0] >= a[0] else a - b
    width = max(float(np.hypot(*d)), 1.0)
    c, s = d / width * size / (SIDE * width)
    rot = np.array([[c, s], [-s, c]])
    return np.concatenate([rot, (size / 2.0 - rot @ centre)[:, None]], 1)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(k, 2) points mapped by the (2, 3) affine ``m``."""
    return np.asarray(pts, np.float64)[:, :2] @ m[:, :2].T + m[:, 2]


def cut(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` square of ``image`` under the affine ``m`` (``square_affine``)."""
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 0.5
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def inner_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Soft (size, size) float32 mask of the inner-lip polygon ``points`` (square pixels)."""
    return soft_polygon((size, size), points, 0.01 * size)


def lips_ring(outer: np.ndarray, inner: np.ndarray, size: int) -> np.ndarray:
    """Bool (size, size): between the outer and the inner lip contours (square pixels)."""
    ring = np.zeros((size, size), np.uint8)
    cv2.fillPoly(ring, [np.round(outer).astype(np.int32)], 1)
    cv2.fillPoly(ring, [np.round(inner).astype(np.int32)], 0)
    return ring > 0


def driver_layout(frame: np.ndarray, driving: np.ndarray, target_inner: np.ndarray, topo: Topology,
                  size: int) -> np.ndarray:
    """The driver's interior as a luminance over its lips' (``square_layout``), fitted (least-squares affine of
    the inner lips) to the target's inner lips ``target_inner`` (square pixels), blurred; (size,
    size) float32, 1 = as light as the driver's lips (``square_layout`` of the driver's square).

    Args:
        frame: Driving RGB image; ``driving``: its (N, 2+) landmarks in its pixels.
    """
    m = square_affine(driving, topo, size)
    return square_layout(cut(frame, m, size), apply_affine(m, driving[topo.lips_inner]),
                         apply_affine(m, driving[topo.lips_outer]), target_inner)


def square_layout(square: np.ndarray, inner: np.ndarray, outer: np.ndarray, target_inner: np.ndarray) -> np.ndarray:
    """``driver_layout`` of a driver's mouth square (RGB) with its inner and outer lips (square pixels):
    each channel over the lips' median of that channel, weighted by ``LIPS`` and the luma."""
    size = square.shape[0]
    rgb = square.astype(np.float32)
    ring = lips_ring(outer, inner, size)
    ref = np.median(rgb[ring], 0) if ring.sum() >= 8 else rgb.reshape(-1, 3).mean(0)
    layout = rgb @ layout_weights(ref)
    fit = affine_fit(target_inner, inner)  # target square -> driver square
    fitted = cv2.warpAffine(layout, fit, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(fitted, (0, 0), LAYOUT_BLUR * size)


def layout_weights(lips: np.ndarray) -> np.ndarray:
    """(3,) float32 weights of each channel in the layout of a driver whose lips' median RGB is
    ``lips``: ``LUMA * LIPS`` over the lips' own colour (see ``LIPS``)."""
    return (_LAYOUT_WEIGHTS / np.maximum(lips, 8.0)).astype(np.float32)


def net_inputs(warp: np.ndarray, source: np.ndarray, target_mask: np.ndarray, source_mask: np.ndarray,
               layout: np.ndarray | None) -> np.ndarray:
    """(IN_CHANNELS, S, S) float32: uint8 RGB squares to [-1, 1], masks as they are, the layout
    (``driver_layout``, or None: zeros and a 0 flag) as (luminance - 1) inside the grown target mask."""
    s = warp.shape[0]
    rgb = [np.asarray(im, np.float32).transpose(2, 0, 1) / 127.5 - 1.0 for im in (warp, source)]
    if layout is None:
        lay, flag = np.zeros((1, s, s), np.float32), np.zeros((1, s, s), np.float32)
    else:
        grow = cv2.dilate(target_mask, np.ones((2 * ALPHA_GROW + 1,) * 2, np.uint8))
        lay = ((np.clip(layout, 0.0, 3.0) - 1.0) * grow)[None].astype(np.float32)
        flag = np.ones((1, s, s), np.float32)
    # C order: the transposed squares would otherwise leave the stack channels-last in memory, and
    # a backend's copy of it into row order is a torch op big enough to wake its thread pool.
    return np.concatenate([*rgb, target_mask[None], source_mask[None], lay, flag]).astype(np.float32, order="C")
