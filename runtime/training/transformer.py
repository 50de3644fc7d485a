"""Training of ``LandmarkTransformerNet`` (and the AU regressor its AU-consistency loss needs).

Self-supervised pairs: two frames of one clip (one person). The source frame's canonical landmarks
and the driving frame's AU/pose vector must give the driving frame's canonical landmarks.
Losses: L1 to the driving landmarks, L2 on the displacement, AU consistency through a frozen
landmark->AU regressor (trained first, on the same cache), and edge-length agreement over the
mesh's neighbouring points (Delaunay edges of the mean face).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import Delaunay

from facepaint.engine.errors import InputError
from facepaint.engine.geometry import umeyama
from facepaint.engine.neural.landmark_transformer import N_AU, STABLE, AURegressor, LandmarkTransformerNet
from facepaint.engine.neural.model_files import AU_REGRESSOR, TRANSFORMER
from facepaint.runtime.training.cache import CachedClip
from facepaint.runtime.training.loop import Trainable, TrainData, check_schedule, cosine
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class TransformerTrainConfig:
    """Landmark-transformer training settings (the ``[transformer]`` table).

    Attributes:
        steps: All steps: the AU regressor's first, then the transformer's.
        au_share: Share of ``steps`` given to the AU regressor.
        batch: Pairs per step.
        lr: Adam learning rate (cosine decay to a tenth within each phase).
        hidden: Net width; layers: hidden layers.
        w_delta, w_au, w_edge: Loss weights of the displacement L2, AU consistency, edge lengths.
        seed: Seed of the weights and of the pair sampling (per step).
        log_every, save_every: Steps between metrics lines / checkpoints.
    """

    steps: int = 8000
    au_share: float = 0.25
    batch: int = 256
    lr: float = 1e-3
    hidden: int = 256
    layers: int = 3
    w_delta: float = 0.05
    w_au: float = 0.1
    w_edge: float = 1.0
    seed: int = 0
    log_every: int = 100
    save_every: int = 1000

    def __post_init__(self) -> None:
        check_schedule(self)
        if not 0 < self.au_share < 1:
            raise ValueError("au_share must be in (0, 1)")

    @property
    def au_steps(self) -> int:
        """Steps of the AU regressor (at least one, and at least one left for the transformer)."""
        return min(max(1, round(self.steps * self.au_share)), max(self.steps - 1, 1))


class LandmarkData:
    """Canonical landmarks and AU vectors of every frame of the cached clips, grouped by clip.

    Args:
        clips: Cached clips.
        template: Canonical stable points; fitted on this data when None.
    """

    def __init__(self, clips: list[CachedClip], template: np.ndarray | None = None) -> None:
        if not clips:
            raise InputError("no cached clips to train the landmark transformer on")
        lms = [c.frame_landmarks.astype(np.float64) for c in clips]
        self.names = [c.name for c in clips]
        self.template = fit_template(np.concatenate(lms)) if template is None else template
        self.canon = np.concatenate([_canonical_all(lm, self.template) for lm in lms]).astype(np.float32)
        self.au = np.concatenate([c.au for c in clips]).astype(np.float32)
        sizes = np.asarray([len(lm) for lm in lms])
        self.clip = np.repeat(np.arange(len(lms)), sizes)
        self.start = np.concatenate([[0], np.cumsum(sizes)[:-1]])[self.clip]
        self.size = sizes[self.clip]

    def pairs(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (source, driving) frame indices, each pair from one clip."""
        a = rng.integers(0, len(self.canon), n)
        b = self.start[a] + (rng.random(n) * self.size[a]).astype(np.int64)
        return a, b


def fit_template(landmarks: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Generalised Procrustes mean of the stable points of (F, 478, 3) frames, centred, RMS 1."""
    pts = landmarks[:, STABLE]
    template = _unit(pts[0])
    for _ in range(rounds):
        aligned = np.stack([_apply(umeyama(p, template), p) for p in pts])
        template = _unit(aligned.mean(0))
    return template


def _unit(p: np.ndarray) -> np.ndarray:
    p = p - p.mean(0)
    return p / np.sqrt((p ** 2).sum(1).mean())


def _apply(fit, p: np.ndarray) -> np.ndarray:
    s, r, t = fit
    return s * p @ r.T + t


def _canonical_all(lm: np.ndarray, template: np.ndarray) -> np.ndarray:
    return np.stack([_apply(umeyama(f[STABLE], template), f) for f in lm])


def mesh_edges(shape: np.ndarray) -> np.ndarray:
    """(E, 2) neighbour pairs: edges of the Delaunay triangulation of ``shape``'s x, y."""
    tri = Delaunay(shape[:, :2]).simplices
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


class TransformerTrainable(Trainable):
    """The AU regressor (first ``au_steps``), then the transformer with the regressor frozen."""

    def __init__(self, config: TransformerTrainConfig, data: TrainData, device: torch.device) -> None:
        self.cfg, self.data = config, LandmarkData(data.clips)
        self.val = LandmarkData(data.val, self.data.template) if data.val else None
        net, reg = LandmarkTransformerNet(config.hidden, config.layers), AURegressor()
        mean = torch.from_numpy(self.data.canon.mean(0))
        for m in (net, reg):
            m.mean_shape.copy_(mean)
        net.template.copy_(torch.from_numpy(self.data.template).float())
        self.net, self.reg = net.to(device), reg.to(device)
        super().__init__({TRANSFORMER: self.net, AU_REGRESSOR: self.reg},
                         {AU_REGRESSOR: torch.optim.Adam(reg.parameters(), lr=config.lr),
                          TRANSFORMER: torch.optim.Adam(net.parameters(), lr=config.lr)}, device)
        self.edges = torch.from_numpy(mesh_edges(self.data.canon.mean(0))).to(device)
        self.canon, self.au = (torch.from_numpy(x).to(device) for x in (self.data.canon, self.data.au))

    def batch(self, rng: np.random.Generator, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, driving) row indices of ``batch`` same-clip pairs."""
        a, b = self.data.pairs(rng, self.cfg.batch)
        return torch.from_numpy(a).to(self.device), torch.from_numpy(b).to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """The regressor's L1 (first phase), or the transformer's four terms and their sum."""
        a, b = batch
        if step < self.cfg.au_steps:
            loss = (self.reg(self.canon[b]) - self.au[b, :N_AU] / 5.0).abs().mean()
            return {AU_REGRESSOR: loss, "au_regressor_l1": loss}
        self.reg.requires_grad_(False)
        src = self.canon[a] + 0.002 * torch.randn_like(self.canon[a])
        return lmt_losses(self.net, self.reg, src, self.au[b], self.canon[b], self.edges, self.cfg)

    def lr(self, name: str, step: int) -> float:
        """Cosine decay within each phase."""
        au = self.cfg.au_steps
        if name == AU_REGRESSOR:
            return cosine(self.cfg.lr, step, au)
        return cosine(self.cfg.lr, step - au, self.cfg.steps - au)

    def validate(self) -> dict[str, float]:
        """``validation_l1`` on the validation clips (once the transformer trains)."""
        return validation_l1(self.net, self.val, self.device) if self.val is not None else {}

    def export(self, folder: Path, training: dict[str, Any]) -> list[Path]:
        """``landmark_transformer`` and ``au_regressor`` safetensors + JSON."""
        notes = {**training, "clips": self.data.names, "frames": int(len(self.data.canon)),
                 **dataclasses.asdict(self.cfg)}
        arch = {TRANSFORMER: {"hidden": self.cfg.hidden, "layers": self.cfg.layers}, AU_REGRESSOR: {}}
        return [save_model(folder, stem, self.nets[stem].cpu(), arch[stem], notes)
                for stem in (TRANSFORMER, AU_REGRESSOR)]


def lmt_losses(net, regressor, src, au, tgt, edges, cfg: TransformerTrainConfig) -> dict[str, torch.Tensor]:
    """The four loss terms and their weighted sum (``transformer``) on one batch."""
    delta = net(src, au)
    pred = src + delta
    l1 = (pred - tgt).abs().mean()
    reg = (delta ** 2).mean()
    au_loss = (regressor(pred) - au[:, :N_AU] / 5.0).abs().mean()
    i, j = edges[:, 0], edges[:, 1]
    edge = ((pred[:, i] - pred[:, j]).norm(dim=-1) - (tgt[:, i] - tgt[:, j]).norm(dim=-1)).abs().mean()
    total = l1 + cfg.w_delta * reg + cfg.w_au * au_loss + cfg.w_edge * edge
    return {TRANSFORMER: total, "l1": l1, "delta_l2": reg, "au": au_loss, "edge": edge}


def validation_l1(net: LandmarkTransformerNet, val: LandmarkData, dev: torch.device, n: int = 2048) -> dict[str, float]:
    """Mean L1 (canonical units) to the driving landmarks on fixed validation pairs, and the
    same for the source left unmoved (what a transformer that does nothing scores)."""
    a, b = val.pairs(np.random.default_rng(12345), n)
    src, tgt = torch.from_numpy(val.canon[a]).to(dev), torch.from_numpy(val.canon[b]).to(dev)
    with torch.no_grad():
        pred = src + net(src, torch.from_numpy(val.au[b]).to(dev))
    return {"val_l1": float((pred - tgt).abs().mean()), "val_l1_still": float((src - tgt).abs().mean())}


def build(config: TransformerTrainConfig, data: TrainData, device: torch.device) -> TransformerTrainable:
    """The landmark transformer's ``Trainable``."""
    return TransformerTrainable(config, data, device)
