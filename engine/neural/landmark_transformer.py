"""FACEGAN's landmark transformer as a stage: source landmarks + driving AUs/pose -> target landmarks.

The net sees the source's 68 iBUG points (from the 478-point mesh) with the head pose removed and
the driving face's 20-d AU/pose vector, never the driving landmarks, so the driving person's face
shape has no way into the output. It predicts the displacement of all 478 mesh points in that
pose-free ("canonical") frame. ``NeuralLandmarkTransformer`` then carries the geometric stage's
machinery (head motion from the driving face's stable points, lid closure, head ring) driven by
the predicted points.

Canonical frame: the mesh's skull-stable points are fitted (3-D similarity, Umeyama) onto a template
learnt from the training clips, so position, scale and head rotation are gone and one unit is
about the template's RMS radius.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facepaint.engine.errors import ConfigError
from facepaint.engine.geometry import umeyama
from facepaint.engine.landmark_transformer import GeometricLandmarkTransformer, TransformerConfig
from facepaint.engine.neural.model_files import TRANSFORMER, open_stage_model, read_tensors, stage_backend
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import ModelConfig
from facepaint.engine.topology import IBUG68_FROM_MESH, MESH_STABLE
from facepaint.engine.track import FaceTrack

N_POINTS = 478
N_AU = 17
N_DRIVING = N_AU + 3  # AU intensities, then yaw, pitch, roll
IBUG = np.asarray(IBUG68_FROM_MESH, np.int64)
STABLE = np.asarray(MESH_STABLE, np.int64)
# AU intensities are in [0, 5] and angles in degrees: both brought to about unit range.
AU_SCALE = np.asarray([1 / 5.0] * N_AU + [1 / 30.0] * 3, np.float32)


def canonical_fit(landmarks: np.ndarray, template: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``(s, R, t)`` taking ``landmarks``' stable points onto ``template`` (3-D).

    Args:
        landmarks: (478, 3) mesh landmarks (any pixel frame).
        template: (len(MESH_STABLE), 3) canonical stable points.
    """
    return umeyama(np.asarray(landmarks, np.float64)[STABLE], template)


def to_canonical(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks in the canonical frame (pose and scale removed)."""
    s, r, t = canonical_fit(landmarks, template)
    return s * np.asarray(landmarks, np.float64) @ r.T + t


class LandmarkTransformerNet(nn.Module):
    """MLP: (source 68 canonical points, driving 20-d AU/pose) -> (478, 3) canonical displacement.

    Args:
        hidden: Width of the hidden layers.
        layers: Number of hidden layers.

    Buffers (learnt from the training data, saved with the weights): ``template`` (27, 3)
    canonical stable points, ``mean_shape`` (478, 3) mean canonical face, ``au_scale`` (20,).
    """

    template: torch.Tensor
    mean_shape: torch.Tensor
    au_scale: torch.Tensor
    ibug: torch.Tensor

    def __init__(self, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        if not 16 <= hidden <= 1024 or not 1 <= layers <= 6:
            raise ConfigError(f"hidden must be in [16, 1024] and layers in [1, 6], got {hidden}, {layers}")
        dims = [len(IBUG) * 3 + len(AU_SCALE)] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, N_POINTS * 3)
        # Starts as "no motion": the deltas grow from zero as training finds them.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("template", torch.zeros(len(STABLE), 3))
        self.register_buffer("mean_shape", torch.zeros(N_POINTS, 3))
        self.register_buffer("au_scale", torch.from_numpy(AU_SCALE.copy()))
        # A buffer rather than a tensor made in forward, so that ONNX export sees a constant.
        self.register_buffer("ibug", torch.from_numpy(IBUG.copy()), persistent=False)

    def forward(self, source: torch.Tensor, au: torch.Tensor) -> torch.Tensor:
        """Displacement of every mesh point.

        Args:
            source: (B, 478, 3) canonical source landmarks (only the 68 iBUG points are read).
            au: (B, 20) driving AU intensities and yaw/pitch/roll in degrees.

        Returns:
            (B, 478, 3) canonical displacement; ``source + output`` is the target.
        """
        shape = (source[:, self.ibug] - self.mean_shape[self.ibug]).flatten(1)
        x = torch.cat([shape * 4.0, au * self.au_scale], dim=1)
        return self.head(self.body(x)).view(-1, N_POINTS, 3) * 0.1


class AURegressor(nn.Module):
    """MLP: 68 canonical points -> the 17 AU intensities / 5 (for the AU-consistency loss).

    Args:
        hidden: Width of the two hidden layers.
    """

    mean_shape: torch.Tensor
    ibug: torch.Tensor

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(len(IBUG) * 3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, N_AU))
        self.register_buffer("mean_shape", torch.zeros(N_POINTS, 3))
        self.register_buffer("ibug", torch.from_numpy(IBUG.copy()), persistent=False)

    def forward(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, 478, 3) canonical landmarks -> (B, 17) AU intensities / 5."""
        return self.net((shape[:, self.ibug] - self.mean_shape[self.ibug]).flatten(1) * 4.0)


class NeuralLandmarkTransformer(GeometricLandmarkTransformer):
    """The geometric stage with the expression displacement predicted by ``LandmarkTransformerNet``.

    With a relative reference (``auto``, ``first``) the displacement is ``net(source, au) -
    net(source, au at the neutral)``, so the neutral driving face maps to the source exactly and
    only changes are transferred; with ``reference="source"`` it is ``net(source, au)`` itself, which is absolute
    without copying any driving landmark (no neutral frame needed, no shape leak). Head motion,
    lid closure and the head ring are the geometric stage's. Lid closure follows the driver's own
    lid opening against its neutral (two ratios, no shape): read from the net's lids instead, the
    judge saw blinks at r 0.59 against the geometric stage's 0.85 (``bench/neural_cross.py``, all
    three stages neural, 4 pairs; 0.83 with the driver's ratios). Per-landmark mouth gain and
    smile damping are geometric tunings and are not applied here.

    The net is a ~0.5 M-parameter MLP run once per frame (well under a millisecond). It runs on
    the CPU in fp32 whatever ``model.device`` and ``model.precision`` say, because a device
    transfer would cost more than the net and fp16 only loses landmark precision: through
    ``model.backend`` when that is ``torch`` or ``onnxruntime``, else (``auto``, ``tensorrt``,
    ``tensorrt-rtx``, which serve the image networks) through the best CPU backend whose file is
    there. ``models`` says which ran.

    Args:
        source: The prepared source face (MediaPipe mesh topology).
        config: Transformer settings (gains, reference, blink thresholds).
        model: Where the weights are (``model.weights`` folder holding
            ``landmark_transformer.safetensors``, or None for the shipped ones) and the backend.

    Raises:
        ConfigError: If the source is not tracked with the 478-point mesh.
        ModelError: If the weights are missing, damaged or do not fit.
    """

    def __init__(self, source: SourceFace, config: TransformerConfig, model: ModelConfig) -> None:
        if source.topology.name != "mediapipe478":
            raise ConfigError(f"the neural landmark transformer needs the mediapipe478 mesh, got "
                              f"'{source.topology.name}'; use tracker 'mediapipe' or the geometric transformer")
        super().__init__(source, config)
        backend = stage_backend(TRANSFORMER, model.backend)
        self.chosen = open_stage_model(TRANSFORMER, model, backend=backend, device="cpu", precision="fp32")
        self.models = (self.chosen.describe(),)
        template = read_tensors(TRANSFORMER, model.weights, ("template",))["template"].astype(np.float64)
        s, r, t = canonical_fit(source.landmarks, template)
        # Canonical displacement -> crop pixels: the inverse of the source's canonical fit.
        self._to_crop = r / s
        self._src = torch.from_numpy((s * source.landmarks @ r.T + t).astype(np.float32))[None]
        self._neutral_out = np.zeros((N_POINTS, 3))

    def close(self) -> None:
        """Release the net's backend; later frames fail."""
        self.chosen.backend.close()

    def calibrate(self, face: FaceTrack) -> None:
        """See ``GeometricLandmarkTransformer.calibrate``; also the net's output at the neutral."""
        super().calibrate(face)
        if self.config.reference == "source":
            self._neutral_out = np.zeros((N_POINTS, 3))
        else:
            self._neutral_out = self._predict(face.au)

    def _predict(self, au: np.ndarray) -> np.ndarray:
        a = torch.as_tensor(np.asarray(au, np.float32))[None]
        return self.chosen.backend.infer({"source": self._src, "au": a})["delta"][0].double().numpy()

    def _expression(self, face: FaceTrack, lm: np.ndarray, unposed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) crop-pixel displacement from the net and (2,) the driver's eye-opening ratio to
        its neutral (the geometric stage's)."""
        delta = self.config.expression * (self._predict(face.au) - self._neutral_out) @ self._to_crop
        return delta, self._lid_ratio(unposed)
