"""The inner mouth painted by the mouth net (``[engine.reenactor] mouth_fill = "neural"``), for the
geometric reenactor and the neural one alike (the neural one paints through the geometric's
``paint``).

Once per portrait: its own mouth square and inner-lip mask, and its lip colours. Per frame: the
warped crop (nothing painted yet) cut into the target's mouth square, the driver's interior as a
luminance layout (``mouth_net.driver_layout``; none for an expression edit), the net, and its RGB
and alpha warped back onto the crop around the target's inner lips. The colour comes from the
portrait: the net was trained to take it from the portrait's square, and its output is then put
through ``mouth_colour.portrait_interior`` with the portrait's own palette on both sides, which
changes nothing for a portrait with colour and pulls the chroma to the portrait's own model for
one without (a black-and-white portrait keeps a grey mouth whatever the net makes).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from facepaint.engine.geometry import box_around, mouth_openness
from facepaint.engine.mouth_colour import LipColour, lip_colour, portrait_interior
from facepaint.engine.neural.model_files import MOUTH, open_mouth_model, read_model_spec
from facepaint.engine.neural.mouth_net import (
    ALPHA_GROW,
    apply_affine,
    cut,
    driver_layout,
    inner_mask,
    net_inputs,
    square_affine,
)
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import ModelConfig

# Below this inner-lip gap over width in both the portrait and the target the mouth is shut and
# there is nothing for the net to paint (its alpha lives inside the inner lips).
SHUT = 0.02


class NeuralMouth:
    """The mouth net on one portrait.

    Args:
        source: The prepared portrait.
        model: Where the weights are (``mouth_net.*`` in ``model.weights``, None: the shipped
            ones) and the backend asked for; it always runs on the CPU in fp32, with onnxruntime
            or torch (``model_files.open_mouth_model``).
        palette: The portrait's ``lip_colour`` (measured here when None).

    Raises:
        ModelError: When the weights are missing, damaged or do not fit.
    """

    def __init__(self, source: SourceFace, model: ModelConfig | None = None,
                 palette: LipColour | None = None) -> None:
        model = model or ModelConfig()
        self.size = int(read_model_spec(MOUTH, model.weights).config["size"])
        self.chosen = open_mouth_model(model)
        self.models = (self.chosen.describe(),)
        self.source = source
        topo, lm = source.topology, source.landmarks
        m = square_affine(lm, topo, self.size)
        self._square = cut(source.crop, m, self.size)
        self._mask = inner_mask(apply_affine(m, lm[topo.lips_inner]), self.size)
        self._palette = palette or lip_colour(source.crop, lm, topo)

    def paint(self, out: np.ndarray, target: np.ndarray, frame: np.ndarray | None,
              driving: np.ndarray | None) -> float:
        """Paint the target's inner mouth onto ``out`` (the warped crop) in place; returns the
        largest alpha painted (0 when the mouth is shut).

        Args:
            out: (h, w, 3) uint8 crop at ``target``, nothing painted on its mouth yet.
            target: (N, 2+) target landmarks in crop pixels.
            frame: Driving RGB frame, or None (an expression edit: no layout).
            driving: (N, 2+) driving landmarks in ``frame`` pixels, or None.
        """
        topo = self.source.topology
        if max(mouth_openness(target, topo), self.source.mouth_open) < SHUT:
            return 0.0
        rgb, alpha, m = self.run(out, target, frame, driving)
        inner = target[topo.lips_inner, :2]
        h, w = out.shape[:2]
        # The alpha reaches ALPHA_GROW square pixels past the inner lips.
        pad = ALPHA_GROW * (np.hypot(*m[0, :2]) ** -1) + 2
        x0, y0, x1, y1 = box_around(inner, pad, (w, h))
        if x1 - x0 < 3 or y1 - y0 < 3:
            return 0.0
        shifted = m.copy()
        shifted[:, 2] += shifted[:, 0] * x0 + shifted[:, 1] * y0
        stack = np.dstack([rgb * alpha[..., None], alpha])
        back = cv2.warpAffine(stack, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)
        roi = out[y0:y1, x0:x1]
        roi[...] = np.clip(roi * (1.0 - back[..., 3:]) + back[..., :3] + 0.5, 0, 255).astype(np.uint8)
        return float(alpha.max())

    def inputs(self, out: np.ndarray, target: np.ndarray, frame: np.ndarray | None,
               driving: np.ndarray | None) -> tuple[torch.Tensor, np.ndarray]:
        """(the net's (1, C, S, S) input, the target square's affine) for ``target`` over the
        warped crop ``out`` (see ``paint``)."""
        topo, size = self.source.topology, self.size
        m = square_affine(target, topo, size)
        inner = apply_affine(m, target[topo.lips_inner])
        layout = (driver_layout(frame, driving, inner, topo, size)
                  if frame is not None and driving is not None else None)
        x = net_inputs(cut(out, m, size), self._square, inner_mask(inner, size), self._mask, layout)
        return torch.from_numpy(x[None]), m

    def run(self, out: np.ndarray, target: np.ndarray, frame: np.ndarray | None,
            driving: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(RGB float32 0..255 in the portrait's colours, alpha, the square's affine) of the net
        for ``target`` over the warped crop ``out``."""
        x, m = self.inputs(out, target, frame, driving)
        res = self.chosen.backend.infer({"x": x})
        rgb = (res["rgb"][0].permute(1, 2, 0).float().cpu().numpy() + 1.0) * 127.5
        alpha = np.ascontiguousarray(res["alpha"][0, 0].float().cpu().numpy())
        return portrait_interior(rgb, self._palette, self._palette).astype(np.float32), alpha, m

    def close(self) -> None:
        """Release the net's backend."""
        self.chosen.backend.close()
