"""Exportable tensor components: the geometric warp's remap step as a torch module.

``BackwardWarp`` is what ``cv2.remap(image, map_x, map_y, INTER_LINEAR, BORDER_REPLICATE)`` does,
written with ``grid_sample`` so that it exports to ONNX (GridSample, opset >= 16) and TensorRT
(rank-4 GridSample, no plugin).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
