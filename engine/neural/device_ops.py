"""The neural reenactor's per-frame image steps as torch ops, on whatever device their inputs are on.

Each function is the tensor twin of a numpy/cv2 step of ``NeuralFaceReenactor`` (``inputs.heatmaps``,
``cv2.remap`` of the coarse and the full-resolution warps, the ``cv2.warpAffine(WARP_INVERSE_MAP)``
that brings the generator's correction back to the crop), so that on CUDA the frame never leaves
the GPU between the landmarks going up and the finished crop coming down. Shapes are static for a
given source, so the whole chain can be captured in a CUDA graph (``GraphedModule``, also used for
single stage models by ``runtime/evaluation/module_bench``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facepaint.engine.backends.modules import BackwardWarp
from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.neural.inputs import REGIONS
from facepaint.engine.warp import PiecewiseAffineWarp

# Half-width (pixels) of the tent that stands in for cv2.polylines' anti-aliased one-pixel line:
# fitted for the least mean absolute difference to ``inputs.heatmaps`` on real landmarks
# (bench/device_path.py --fit; 60 lp_d10 frames on the lp_s42 and obama squares: 1.0 -> 0.00128,
# 1.25 -> 0.00104, 1.4 -> 0.00113). cv2's AA line lays about 1.27 px of ink per pixel of length.
LINE_HALF_WIDTH = 1.25


@functools.lru_cache(maxsize=1)
def _segment_table() -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(start index, end index) of every line segment ``inputs.heatmaps`` draws, grouped by
    region, and where each region's segments start (plus the total)."""
    starts: list[int] = []
    ends: list[int] = []
    bounds = [0]
    for _, lines, closed in REGIONS:
        for line in lines:
            pts = list(line) + ([line[0]] if closed else [])
            starts += pts[:-1]
            ends += pts[1:]
        bounds.append(len(starts))
    return np.array(starts), np.array(ends), tuple(bounds)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """cv2.GaussianBlur's kernel for a uint8 image and this sigma (ksize 0)."""
    size = int(round(sigma * 3 * 2 + 1)) | 1
    x = np.arange(size) - (size - 1) / 2.0
    k = np.exp(-x * x / (2.0 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


class Heatmaps:
    """The generator's landmark heatmaps (``inputs.heatmaps``) drawn on a device.

    Each region's polylines are drawn as a tent of the distance to the nearest segment (the
    anti-aliased line), blurred with cv2's Gaussian kernel and border (reflect-101) and normalised
    by the region's peak as the cv2 version is. Not bit-identical to cv2's rasteriser: about 0.001
    mean absolute difference per pixel on real landmarks (tests/engine/test_device_path.py). The
    segment table and the kernel go to the device once, here, so a call copies nothing from the
    host and can be captured in a CUDA graph.

    Args:
        size: Square side.
        sigma: Blur in pixels.
        device: Where the heatmaps are drawn.
    """

    def __init__(self, size: int, sigma: float = 1.2, device: torch.device | str = "cpu") -> None:
        start, end, bounds = _segment_table()
        self.size = size
        self._start = torch.from_numpy(start).to(device)
        self._end = torch.from_numpy(end).to(device)
        self._bounds = bounds
        kernel = torch.from_numpy(_gaussian_kernel(sigma)).to(device)
        n = len(REGIONS)
        self._row = kernel.view(1, 1, 1, -1).expand(n, 1, 1, -1).contiguous()
        self._col = kernel.view(1, 1, -1, 1).expand(n, 1, -1, 1).contiguous()
        self._coords = torch.arange(size, device=device, dtype=torch.float32)

    def __call__(self, landmarks_sq: torch.Tensor) -> torch.Tensor:
        """Draw the heatmaps of ``landmarks_sq``.

        Args:
            landmarks_sq: (478, 2+) float target landmarks in square pixels (pixel centres on
                integers), on this drawer's device.

        Returns:
            (len(REGIONS), size, size) float32 in [0, 1].
        """
        # cv2 gets the points with 2 fractional bits (shift=2); quantise the same way.
        points = torch.round(landmarks_sq[:, :2].float() * 4.0) / 4.0
        ink = self._ink(points)[None]
        pad = self._row.shape[-1] // 2
        blurred = F.conv2d(F.pad(ink, (pad, pad, pad, pad), mode="reflect"), self._row, groups=len(REGIONS))
        blurred = F.conv2d(blurred, self._col, groups=len(REGIONS))[0]
        # cv2 divides by max(peak, 1) in grey levels: an empty channel stays empty.
        return blurred / blurred.amax(dim=(1, 2), keepdim=True).clamp_min(1.0 / 255.0)

    def _ink(self, points: torch.Tensor) -> torch.Tensor:
        """(len(REGIONS), size, size) canvas: each region's polylines as tents of distance,
        max-combined (cv2's anti-aliased lines saturate where they cross instead of adding up)."""
        a, b = points[self._start], points[self._end]
        ab = b - a
        length = ab.norm(dim=1)
        ux, uy = (ab / length.clamp_min(1e-6)[:, None]).unbind(1)
        dx = self._coords[None, :, None] - a[:, 0]  # (1, x, segment)
        dy = self._coords[:, None, None] - a[:, 1]  # (y, 1, segment)
        along = torch.minimum((dx * ux + dy * uy).clamp_min(0.0), length)  # nearest point on the segment
        dist = torch.sqrt((dx - along * ux) ** 2 + (dy - along * uy) ** 2)
        tent = (1.0 - dist / LINE_HALF_WIDTH).clamp_min(0.0)
        bounds = self._bounds
        return torch.stack([tent[..., lo:hi].amax(-1) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])


class MapUpsampler:
    """``PiecewiseAffineWarp.maps(full=True)`` finished on the device from its cell maps
    (``full=False``): the host sends step² fewer floats per frame and skips the full-size resize.

    The same steps as the host: the displacement from the cell centres, the outermost cells pinned
    to zero, a bilinear resize (cv2.resize's INTER_LINEAR is torch's ``align_corners=False``, both
    clamping at the border) and the pixel grid added back.

    Args:
        warp: The warp whose cell maps will be upsampled (its size and cell grid are fixed).
        device: Where the maps are finished.
    """

    def __init__(self, warp: PiecewiseAffineWarp, device: torch.device | str = "cpu") -> None:
        width, height = self.size = warp.size
        cells_w, cells_h = warp.coarse
        # Cell centres in pixels, as PiecewiseAffineWarp computes them (float64, then float32).
        cx = ((np.arange(cells_w) + 0.5) * (width / cells_w) - 0.5).astype(np.float32)
        cy = ((np.arange(cells_h) + 0.5) * (height / cells_h) - 0.5).astype(np.float32)
        self._cells_x = torch.from_numpy(cx).to(device)[None, :]
        self._cells_y = torch.from_numpy(cy).to(device)[:, None]
        inner = torch.zeros(cells_h, cells_w, device=device)
        inner[1:-1, 1:-1] = 1.0
        self._inner = inner
        self._pixels_x = torch.arange(width, device=device, dtype=torch.float32)[None, :]
        self._pixels_y = torch.arange(height, device=device, dtype=torch.float32)[:, None]

    def __call__(self, cells_x: torch.Tensor, cells_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(map_x, map_y) at full size, from the (cells_h, cells_w) maps on this device."""
        shift = torch.stack([cells_x - self._cells_x, cells_y - self._cells_y])[None] * self._inner
        width, height = self.size
        full = F.interpolate(shift, size=(height, width), mode="bilinear", align_corners=False)[0]
        return full[0] + self._pixels_x, full[1] + self._pixels_y


_WARP = BackwardWarp()  # stateless: no weights, nothing per call


def remap(image: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor, border: str = "replicate") -> torch.Tensor:
    """``cv2.remap(image, map_x, map_y, INTER_LINEAR, borderMode=BORDER_REPLICATE)`` on the device
    (``border="constant"``: BORDER_CONSTANT with 0).

    Args:
        image: (C, Hs, Ws) or (N, C, Hs, Ws) float image.
        map_x: (H, W) float source x per output pixel, in pixels.
        map_y: (H, W) float source y per output pixel, in pixels.
        border: ``"replicate"`` or ``"constant"``.

    Returns:
        The warped image, (C, H, W) or (N, C, H, W) as ``image``, in its dtype. Unlike cv2 on
        uint8 it is not rounded.
    """
    batch = image if image.dim() == 4 else image[None]
    if border == "replicate":
        grid = torch.stack([map_x, map_y], dim=-1)[None].expand(batch.shape[0], -1, -1, -1)
        out = _WARP(batch, grid)
    elif border == "constant":
        # BackwardWarp's pixel convention with zeros padding: cv2's BORDER_CONSTANT also reads the
        # taps outside the image as 0.
        height, width = batch.shape[-2:]
        grid = torch.stack([map_x * (2.0 / (width - 1)) - 1.0, map_y * (2.0 / (height - 1)) - 1.0], dim=-1)
        out = F.grid_sample(batch, grid[None].expand(batch.shape[0], -1, -1, -1).to(batch.dtype), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
    else:
        raise ValueError(f"border must be 'replicate' or 'constant', got '{border}'")
    return out if image.dim() == 4 else out[0]


def back_grid(matrix: np.ndarray, square_size: int, crop_size: tuple[int, int],
              device: torch.device | str = "cpu") -> torch.Tensor:
    """The sampling grid of ``affine_back`` for one crop→square ``matrix`` (fixed per source).

    Args:
        matrix: (2, 3) affine from crop pixels to square pixels.
        square_size: Side of the square being sampled.
        crop_size: (width, height) of the crop being filled.
        device: Where the grid lives.

    Returns:
        (1, height, width, 2) float32 grid for ``grid_sample(..., align_corners=True)``.
    """
    width, height = crop_size
    # With align_corners=True, -1 / +1 are the first / last pixel centres (cv2's integer pixel
    # coordinates, see BackwardWarp): crop normalised -> crop pixels -> square pixels -> normalised.
    from_norm = np.array([[(width - 1) / 2.0, 0.0, (width - 1) / 2.0],
                          [0.0, (height - 1) / 2.0, (height - 1) / 2.0],
                          [0.0, 0.0, 1.0]])
    to_norm = np.array([[2.0 / (square_size - 1), 0.0, -1.0], [0.0, 2.0 / (square_size - 1), -1.0]])
    crop_to_square = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    theta = to_norm @ crop_to_square @ from_norm
    theta_t = torch.from_numpy(theta)[None].to(device)
    grid = F.affine_grid(theta_t, [1, 1, height, width], align_corners=True)
    return grid.float()


def affine_back(delta_sq: torch.Tensor, matrix: np.ndarray | None, crop_size: tuple[int, int],
                grid: torch.Tensor | None = None) -> torch.Tensor:
    """``cv2.warpAffine(delta, matrix, crop_size, INTER_LINEAR | WARP_INVERSE_MAP, BORDER_CONSTANT)``.

    Args:
        delta_sq: (C, S, S) float image in the square.
        matrix: (2, 3) affine from crop pixels to square pixels (unused when ``grid`` is given).
        crop_size: (width, height) of the crop.
        grid: ``back_grid(matrix, S, crop_size)``, when the caller keeps it (it is fixed per source).

    Returns:
        (C, height, width) float: the square brought back to the crop, 0 outside it.
    """
    if grid is None:
        if matrix is None:
            raise ValueError("affine_back needs a matrix or a grid")
        grid = back_grid(matrix, delta_sq.shape[-1], crop_size, delta_sq.device)
    out = F.grid_sample(delta_sq[None], grid.to(delta_sq.dtype), mode="bilinear", padding_mode="zeros",
                        align_corners=True)
    return out[0]


class GraphedModule:
    """``module``'s forward captured as a CUDA graph for static input shapes, replayed per call.

    Each call copies its inputs into the captured ones and replays the graph: one launch instead
    of one per kernel. The outputs are the captured tensors, overwritten by the next call: copy
    what must outlive it.

    Args:
        module: Callable on CUDA tensors (a module, or ``DeviceReenactorPath.step`` with its
            generator bound) with no host synchronisation inside.
        *example_inputs: CUDA tensors of the shapes and dtypes every call will pass.
        warmup: Eager runs on a side stream before capture (cuDNN and the allocator settle there,
            as PyTorch's CUDA graph notes require).

    Raises:
        ConfigError: When the inputs are not on a CUDA device.
    """

    def __init__(self, module: Callable[..., Any], *example_inputs: torch.Tensor, warmup: int = 3) -> None:
        if not example_inputs or any(t.device.type != "cuda" for t in example_inputs):
            found = sorted({t.device.type for t in example_inputs}) or ["no inputs"]
            raise ConfigError(f"CUDA graphs need CUDA tensors, got {', '.join(found)}; use --device cuda")
        self._inputs = [t.clone() for t in example_inputs]
        device = example_inputs[0].device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):
                module(*self._inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.inference_mode():
            self._outputs = module(*self._inputs)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """Replay on ``inputs`` (same shapes and dtypes as the example inputs)."""
        if len(inputs) != len(self._inputs):
            raise InputError(f"this graph takes {len(self._inputs)} inputs, got {len(inputs)}")
        for static, x in zip(self._inputs, inputs, strict=True):
            if x.shape != static.shape or x.dtype != static.dtype:
                raise InputError(f"this graph was captured for {tuple(static.shape)} {static.dtype}, "
                                 f"got {tuple(x.shape)} {x.dtype}")
        # The captured inputs may be inference tensors (captured under inference mode): update
        # them under it too.
        with torch.inference_mode():
            for static, x in zip(self._inputs, inputs, strict=True):
                static.copy_(x, non_blocking=True)
        self._graph.replay()
        return self._outputs
