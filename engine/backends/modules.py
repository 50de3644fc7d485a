"""Exportable tensor components: the geometric warp's remap step as a torch module.

``BackwardWarp`` is what ``cv2.remap(image, map_x, map_y, INTER_LINEAR, BORDER_REPLICATE)`` does,
written with ``grid_sample`` so that it exports to ONNX (GridSample, opset >= 16) and TensorRT
(rank-4 GridSample, no plugin).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facepaint.engine.backends.spec import ModelSpec, TensorSpec


class BackwardWarp(nn.Module):
    """Sample an image at a dense backward map given in source pixels.

    cv2.remap reads pixel ``i`` at coordinate ``i`` (pixel centres on integers), so ``-1`` and ``+1``
    of grid_sample must land on the centres of the first and last pixels: that is
    ``align_corners=True`` with ``x_norm = 2 x / (W - 1) - 1``. ``border`` padding then clamps the
    coordinate to ``[0, W - 1]``, which is what BORDER_REPLICATE does for bilinear sampling.

    The module has no weights; ``config`` is empty.
    """

    def forward(self, image: torch.Tensor, backward_map: torch.Tensor) -> torch.Tensor:
        """Warp ``image`` by ``backward_map``.

        Args:
            image: (N, C, Hs, Ws) float source image.
            backward_map: (N, H, W, 2) source coordinates (x, y) in pixels, per output pixel.

        Returns:
            (N, C, H, W) warped image, in ``image``'s dtype.
        """
        height, width = image.shape[-2], image.shape[-1]
        grid_x = backward_map[..., 0] * (2.0 / (width - 1)) - 1.0
        grid_y = backward_map[..., 1] * (2.0 / (height - 1)) - 1.0
        grid = torch.stack([grid_x, grid_y], dim=-1).to(image.dtype)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def backward_warp_spec(size: tuple[int, int] = (64, 64), source_size: tuple[int, int] | None = None) -> ModelSpec:
    """Return the ``model.json`` spec of ``BackwardWarp`` with dynamic batch and sizes.

    Args:
        size: Example output (height, width).
        source_size: Example source (height, width); ``size`` if omitted.
    """
    src_h, src_w = source_size or size
    height, width = size
    return ModelSpec(
        architecture="backward_warp",
        config={},
        inputs=(
            TensorSpec("image", (1, 3, src_h, src_w), "float32", ("batch", None, "src_h", "src_w")),
            TensorSpec("backward_map", (1, height, width, 2), "float32", ("batch", "height", "width", None)),
        ),
        outputs=("warped",),
    )


def maps_to_tensor(map_x: np.ndarray, map_y: np.ndarray) -> torch.Tensor:
    """Stack cv2-style ``(map_x, map_y)`` float arrays of shape (H, W) into a (1, H, W, 2) tensor."""
    return torch.from_numpy(np.stack([map_x, map_y], axis=-1).astype(np.float32, copy=False))[None]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """Convert an (H, W, 3) uint8 image into a (1, 3, H, W) float tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)[None]
