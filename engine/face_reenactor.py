"""Stage 2: the source crop re-posed to the target landmarks (geometric: warp + mouth + lids)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from facepaint.engine.eyes import paint_irises, paint_lids
from facepaint.engine.landmark_transformer import TargetShape
from facepaint.engine.mouth import mouth_alpha, paint_mouth
from facepaint.engine.mouth_colour import lip_colour
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import ModelConfig, check_kind

# Each mouth fill and whether it runs the mouth net (the one table of it: the engine opens the net,
# the first-use compile builds its file and model settings are accepted for these).
MOUTH_FILLS = {"paint": False, "neural": True, "hybrid": True, "off": False}


@dataclass(frozen=True)
class ReenactorConfig:
    """Face-reenactor settings.

    Attributes:
        kind: ``geometric`` (this module) or ``neural`` (the coarse-to-fine generator,
            ``facepaint.engine.neural``).
        mouth_fill: What paints the mouth interior where the warp cannot (opening, or closing
            over the source's teeth): ``paint`` (``engine.mouth``: the driver's interior fitted
            and recoloured, the source's teeth kept rigid), ``neural`` (the mouth net,
            ``engine.mouth_neural``), ``hybrid`` (the net up to the portrait's own opening, the
            paint beyond it: ``GeometricFaceReenactor.paint``) or ``off``.
        mouth_colour: Where the painted interior's colour comes from: ``portrait`` (the driver's
            luminance layout in the portrait's own lip and teeth colours,
            ``facepaint.engine.mouth_colour``) or ``driver`` (the driver's interior matched by
            mean and spread over the lower face: a tinted camera or a black-and-white portrait
            shows through).
        mouth_open_gain: Extra opening (gap over width) beyond the source's at which the fill is full.
        lid_fill: Paint lid skin over closing eyes.
        gaze: Move the irises rigidly to the driving gaze (topologies with iris points).
        interpolation: ``"linear"`` or ``"cubic"`` resampling of the crop.
    """

    kind: str = "geometric"
    mouth_fill: str = "paint"
    mouth_colour: str = "portrait"
    mouth_open_gain: float = 0.06
    lid_fill: bool = True
    gaze: bool = True
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        check_kind("reenactor", self.kind)
        if self.interpolation not in ("linear", "cubic"):
            raise ValueError(f"interpolation must be 'linear' or 'cubic', got '{self.interpolation}'")
        if self.mouth_fill not in MOUTH_FILLS:
            raise ValueError(f"mouth_fill must be one of {', '.join(MOUTH_FILLS)}, got '{self.mouth_fill}'")
        if self.mouth_colour not in ("portrait", "driver"):
            raise ValueError(f"mouth_colour must be 'portrait' or 'driver', got '{self.mouth_colour}'")
        if not 0.005 <= self.mouth_open_gain <= 0.5:
            raise ValueError(f"mouth_open_gain must be in [0.005, 0.5], got {self.mouth_open_gain}")

    @property
    def mouth_net(self) -> bool:
        """Whether ``mouth_fill`` runs the mouth net."""
        return MOUTH_FILLS[self.mouth_fill]


@dataclass(frozen=True, eq=False)
class Reenacted:
    """One reenacted crop.

    Attributes:
        image: RGB uint8 crop at the source crop's size.
        mask: Soft person mask (float32 in [0, 1], crop size: face and hair) for the mixer to
            composite ``image`` over the person-removed background; None when ``image`` is already
            the whole crop, background included. The geometric reenactor returns the source's head
            mask carried by its warp, so the background stays still when the head moves.
        mouth_alpha: Strength of the mouth fill used.
        feather: The mixer's feather (face widths) ``mask`` already carries (the source's
            ``feather``, folded in at prepare time); the mixer adds only what is missing.
    """

    image: np.ndarray
    mask: np.ndarray | None = None
    mouth_alpha: float = 0.0
    feather: float = 0.0


class FaceReenactor(Protocol):
    """Renders the source face at a target shape (geometric now, coarse-to-fine generator later)."""

    # One "model: backend on device" line per network the stage runs (none for geometric ones).
    models: tuple[str, ...]

    def render(self, target: TargetShape, frame: np.ndarray | None, driving: np.ndarray | None) -> Reenacted:
        """Reenacted crop for ``target``; ``frame``/``driving`` (driving frame and landmarks) may be None."""

    def close(self) -> None:
        """Release what the stage holds (a model, device memory); later calls do nothing."""


class GeometricFaceReenactor:
    """Piecewise-affine backward warp of the source crop, then mouth and lid repaint.

    Args:
        source: The prepared source face.
        config: Reenactor settings.
        model: Where the mouth net's weights are (``mouth_fill = "neural"``; None: the shipped ones).
    """

    models: tuple[str, ...] = ()

    def __init__(self, source: SourceFace, config: ReenactorConfig, model: ModelConfig | None = None) -> None:
        self.source = source
        self.config = config
        self._src_vertices = source.vertices.astype(np.float64)
        self._interp = cv2.INTER_CUBIC if config.interpolation == "cubic" else cv2.INTER_LINEAR
        self._layers = _layers(source)
        # The portrait's lip and teeth colours, once (prepare time), for the interior's colour.
        self._palette = (lip_colour(source.crop, source.landmarks, source.topology)
                         if config.mouth_colour == "portrait" or config.mouth_net else None)
        self._mouth = None
        if config.mouth_net:
            from facepaint.engine.mouth_neural import NeuralMouth

            self._mouth = NeuralMouth(source, model, self._palette)
            self.models = self._mouth.models

    def follow_source(self, source: SourceFace) -> None:
        """Warp ``source`` (the next frame of a video source, same crop size and triangulation) from
        now on; the lip palette stays the base frame's (same person, same light)."""
        # A video source's frames share one head mask: its alpha is made once, not per frame.
        alpha = self._layers[..., 3] if source.head_mask is self.source.head_mask else None
        self.source = source
        self._src_vertices = source.vertices.astype(np.float64)
        self._layers = _layers(source, alpha)

    def maps(self, target: TargetShape, full: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Dense backward maps (crop size) from the target shape to the source crop (with ``full``
        False, the warp's cell maps, for ``device_ops.MapUpsampler``)."""
        warp = self.source.topology.warp
        dst = np.concatenate([target.landmarks[warp, :2], target.anchors[:, :2], self.source.ring])
        # The fixed ring is the farthest layer: the head is always painted over the background.
        far = np.full(len(self.source.ring), target.landmarks[:, 2].max() + self.source.face_width)
        depth = np.concatenate([target.landmarks[warp, 2], target.anchors[:, 2], far])
        return self.source.warp.maps(self._src_vertices, dst, full=full, depth=depth)

    def render(self, target: TargetShape, frame: np.ndarray | None, driving: np.ndarray | None) -> Reenacted:
        """See ``FaceReenactor.render``: ``warp``, then ``paint`` over it."""
        warped = self.warp(target)
        alpha = self.paint(warped.image, target, frame, driving)
        return Reenacted(warped.image, warped.mask, alpha, warped.feather)

    def warp(self, target: TargetShape) -> Reenacted:
        """The source crop and its head mask warped to ``target``, nothing painted (a new image)."""
        mx, my = self.maps(target)
        # The person mask rides on the same map (the moved head goes over the still background), as
        # the crop's fourth channel: one remap instead of two.
        both = cv2.remap(self._layers, mx, my, self._interp, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.extractChannel(both, 3).astype(np.float32) * np.float32(1.0 / 255.0)
        return Reenacted(cv2.cvtColor(both, cv2.COLOR_RGBA2RGB), mask, 0.0, self.source.feather)

    def paint(self, out: np.ndarray, target: TargetShape, frame: np.ndarray | None,
              driving: np.ndarray | None) -> float:
        """Paint what the warp cannot onto ``out`` (a crop at ``target``) in place, as the config
        says: the mouth interior, the irises at the driving gaze, lid skin over closing eyes.
        Returns the mouth fill's strength (0 when none was painted)."""
        alpha = self._paint_mouth(out, target.landmarks, frame, driving)
        if self.config.gaze:
            paint_irises(out, self.source, target.landmarks)
        if self.config.lid_fill:
            paint_lids(out, self.source, target.landmarks, target.eye_closure)
        return alpha

    def _paint_mouth(self, out: np.ndarray, target: np.ndarray, frame: np.ndarray | None,
                     driving: np.ndarray | None) -> float:
        """The mouth fill of ``paint``; returns its strength.

        ``hybrid``: the net paints what lies inside the portrait's own opening (a slit between a
        smiling portrait's teeth rows, lips closing over them, a portrait's open mouth closed
        down), and the paint crossfades over it as the target opens beyond that opening
        (``mouth_alpha``'s opening strength). There the warp has stretched the portrait's teeth
        into streaks the net keeps (a curtain of teeth, docs/MOUTH.md), while the paint keeps the
        teeth rigid with their lips and shows the driver's interior between them.
        """
        fill = self.config.mouth_fill
        opened = closing = 0.0
        if fill in ("paint", "hybrid"):
            opened, closing = mouth_alpha(self.source, target, self.config.mouth_open_gain)
        alpha = opened
        if self._mouth is not None and (fill == "neural" or opened < 0.99):
            alpha = max(alpha, self._mouth.paint(out, target, frame, driving))
            closing = 0.0  # the net has painted the closing lips' interior
        if opened > 0.01 or closing > 0.01:
            paint_mouth(out, self.source, target, frame, driving, opened, closing, self._palette)
        return alpha

    def close(self) -> None:
        """Release the mouth net (see ``FaceReenactor.close``)."""
        if self._mouth is not None:
            self._mouth.close()


def _layers(source: SourceFace, alpha: np.ndarray | None = None) -> np.ndarray:
    """The crop with its head mask as an 8-bit alpha channel (RGBA uint8, crop size); ``alpha``:
    that channel already made from the same mask.

    Warped as one image, the mask costs no remap of its own (about 1 ms a frame at live size on
    this CPU). Its steps of 1/255 stay below what the 8-bit output can show; the warp pins the
    crop border, so the replicated border never reaches the mask where a constant one would differ.
    """
    layers = cv2.cvtColor(source.crop, cv2.COLOR_RGB2RGBA)
    layers[..., 3] = alpha if alpha is not None else np.clip(source.head_mask * 255.0 + 0.5, 0, 255)
    return layers
