"""Training of ``LandmarkTransformerNet`` (and the AU regressor its AU-consistency loss needs).

Self-supervised pairs: two frames of one clip (one person). The source frame's canonical landmarks
and the driving frame's AU/pose vector must give the driving frame's canonical landmarks.
Losses: L1 to the driving landmarks, L2 on the displacement, AU consistency through a frozen
landmark->AU regressor (trained first, on the same cache), and edge-length agreement over the
mesh's neighbouring points (Delaunay edges of the mean face).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import Delaunay

from facepaint.engine.errors import InputError
from facepaint.engine.geometry import umeyama
from facepaint.engine.neural.landmark_transformer import N_AU, STABLE, AURegressor, LandmarkTransformerNet
from facepaint.engine.neural.model_files import AU_REGRESSOR, TRANSFORMER
from facepaint.runtime.training.lmt_common import MetricsLog, load_checkpoint, open_run, save_checkpoint
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class LmtTrainConfig:
    """Landmark-transformer training settings.

    Attributes:
        steps: Transformer steps (the AU regressor trains ``au_steps`` first).
        au_steps: AU-regressor steps.
        batch: Pairs per step.
        lr: Adam learning rate (cosine decay to a tenth).
        hidden: Net width; layers: hidden layers.
        w_delta, w_au, w_edge: Loss weights of the displacement L2, AU consistency, edge lengths.
        seed: Seed of the weights and of the pair sampling (per step, so a resumed run draws the
            same pairs).
        log_every, checkpoint_every: Steps between metrics lines / checkpoints.
        device: ``cpu`` or ``cuda``.
    """

    steps: int = 6000
    au_steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    hidden: int = 256
    layers: int = 3
    w_delta: float = 0.05
    w_au: float = 0.1
    w_edge: float = 1.0
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000
    device: str = "cpu"


class LandmarkData:
    """Canonical landmarks and AU vectors of every frame of a cache folder, grouped by clip.

    Args:
        cache: Folder of ``.npz`` clips (see ``lmt_cache``).
        template: Canonical stable points; fitted on this data when None.
    """

    def __init__(self, cache: Path, template: np.ndarray | None = None) -> None:
        files = sorted(Path(cache).glob("*.npz"))
        if not files:
            raise InputError(f"no cached clips (*.npz) in {cache}; build the cache first")
        raw = [np.load(f) for f in files]
        lms = [r["landmarks"].astype(np.float64) for r in raw]
        self.names = [f.stem for f in files]
        self.template = fit_template(np.concatenate(lms)) if template is None else template
        self.canon = np.concatenate([_canonical_all(lm, self.template) for lm in lms]).astype(np.float32)
        self.au = np.concatenate([r["au"] for r in raw]).astype(np.float32)
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


def lmt_losses(net, regressor, src, au, tgt, edges, cfg: LmtTrainConfig) -> dict[str, torch.Tensor]:
    """The four loss terms and their weighted sum (``total``) on one batch."""
    delta = net(src, au)
    pred = src + delta
    l1 = (pred - tgt).abs().mean()
    reg = (delta ** 2).mean()
    au_loss = (regressor(pred) - au[:, :N_AU] / 5.0).abs().mean()
    i, j = edges[:, 0], edges[:, 1]
    edge = ((pred[:, i] - pred[:, j]).norm(dim=-1) - (tgt[:, i] - tgt[:, j]).norm(dim=-1)).abs().mean()
    total = l1 + cfg.w_delta * reg + cfg.w_au * au_loss + cfg.w_edge * edge
    return {"total": total, "l1": l1, "delta_l2": reg, "au": au_loss, "edge": edge}


def _nets(config: LmtTrainConfig, data: LandmarkData, dev: torch.device) -> tuple[LandmarkTransformerNet, AURegressor]:
    """The transformer and the AU regressor, centred on the cache's mean shape, on ``dev``."""
    net, reg = LandmarkTransformerNet(config.hidden, config.layers), AURegressor()
    mean = torch.from_numpy(data.canon.mean(0))
    for m in (net, reg):
        m.mean_shape.copy_(mean)
    net.template.copy_(torch.from_numpy(data.template).float())
    return net.to(dev), reg.to(dev)


def train_landmark_transformer(cache: Path, out: Path, config: LmtTrainConfig = LmtTrainConfig(),
                               resume: bool = False, validate: Path | None = None) -> tuple[Path, ...]:
    """Train the AU regressor then the transformer on a cache; write their weights into ``out``.

    Args:
        cache: Training cache folder (``lmt_cache`` output).
        out: Run folder (config, checkpoints, metrics.jsonl, final weights).
        config: Settings.
        resume: Continue the run in ``out`` from its checkpoint.
        validate: Optional validation cache: its L1 is logged with the metrics.

    Returns:
        The weights paths: ``landmark_transformer.safetensors``, ``au_regressor.safetensors``.
    """
    torch.manual_seed(config.seed)
    start = open_run(out, config, resume)
    data = LandmarkData(cache)
    val = LandmarkData(validate, data.template) if validate is not None else None
    dev = torch.device(config.device)
    net, reg = _nets(config, data, dev)
    opt_r = torch.optim.Adam(reg.parameters(), lr=config.lr)
    opt_n = torch.optim.Adam(net.parameters(), lr=config.lr)
    modules, opts = {"transformer": net, "au_regressor": reg}, {"transformer": opt_n, "au_regressor": opt_r}
    if start:
        load_checkpoint(out, modules, opts)
    log = MetricsLog(out)
    edges = torch.from_numpy(mesh_edges(data.canon.mean(0))).to(dev)
    canon, au = torch.from_numpy(data.canon).to(dev), torch.from_numpy(data.au).to(dev)
    total = config.au_steps + config.steps
    for step in range(start, total):
        rng = np.random.default_rng([config.seed, step])
        a, b = (torch.from_numpy(x).to(dev) for x in data.pairs(rng, config.batch))
        if step < config.au_steps:
            loss = (reg(canon[b]) - au[b, :N_AU] / 5.0).abs().mean()
            _step(opt_r, loss, config.lr, step, config.au_steps)
            terms = {"au_regressor_l1": loss}
        else:
            reg.requires_grad_(False)
            src = canon[a] + 0.002 * torch.randn_like(canon[a])
            terms = lmt_losses(net, reg, src, au[b], canon[b], edges, config)
            _step(opt_n, terms["total"], config.lr, step - config.au_steps, config.steps)
        if (step + 1) % config.log_every == 0 or step + 1 == total:
            extra = validation_l1(net, val, dev) if val is not None and step >= config.au_steps else {}
            log(step + 1, **{k: float(v.detach()) for k, v in terms.items()}, **extra)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == total:
            save_checkpoint(out, step + 1, modules, opts)
    training = {"cache": str(cache), "clips": data.names, "frames": int(len(data.canon)), **asdict(config)}
    config_of = {TRANSFORMER: {"hidden": config.hidden, "layers": config.layers}, AU_REGRESSOR: {}}
    return tuple(save_model(out, stem, modules[part].cpu(), config_of[stem], training)
                 for stem, part in ((TRANSFORMER, "transformer"), (AU_REGRESSOR, "au_regressor")))


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float, step: int, steps: int) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(step, steps) / max(steps, 1))))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def validation_l1(net: LandmarkTransformerNet, val: LandmarkData, dev: torch.device, n: int = 2048) -> dict[str, float]:
    """Mean L1 (canonical units) to the driving landmarks on fixed validation pairs, and the
    same for the source left unmoved (what a transformer that does nothing scores)."""
    a, b = val.pairs(np.random.default_rng(12345), n)
    src, tgt = torch.from_numpy(val.canon[a]).to(dev), torch.from_numpy(val.canon[b]).to(dev)
    with torch.no_grad():
        pred = src + net(src, torch.from_numpy(val.au[b]).to(dev))
    return {"val_l1": float((pred - tgt).abs().mean()), "val_l1_still": float((src - tgt).abs().mean())}
