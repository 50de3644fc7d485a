"""Training of the mouth net (``engine.neural.mouth_net``) on mouth squares of the cached clips.

A pair is two frames of one clip: the source (the portrait) and the target (the truth and the
driver). Both are cut into mouth squares from the cache's aligned crops; the source square is
warped to the target's lip shape by the project's piecewise-affine warp over the landmarks in the
square (what the engine's warp does to the mouth), and the net must paint the target's interior.
Targets are drawn by mouth opening (open mouths oversampled). The same random colour change
(gains, gamma, greyscale, tint) goes on source and target, so the interior's colour can only come
from the source; the driver's layout is made from the target after a colour change of its own (a
camera of its own) and dropped ``drop_layout`` of the time. Flips; JPEG on the source.
Sources showing their teeth are drawn ``teeth_bias`` times more often (a smiling portrait driven
wide open: the warp stretches its teeth, and the net must learn to replace them).
Losses: L1 inside the dilated inner lips, the MobileNetV2 feature loss, the interior's mean colour
and, after ``gan_start`` steps of those alone, a small patch discriminator (``PatchCritic``, its
own optimizer ``mouth_critic`` in the one loop) that sees only the painted region, so blur loses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facepaint.engine.errors import InputError
from facepaint.engine.neural import mouth_net as mn
from facepaint.engine.neural.model_files import MOUTH
from facepaint.engine.topology import get_topology
from facepaint.engine.warp import PiecewiseAffineWarp, border_ring, triangulate
from facepaint.runtime.training.cache import CachedClip
from facepaint.runtime.training.loop import Trainable, TrainData, check_schedule, cosine
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class MouthTrainConfig:
    """Mouth-net training settings (the ``[mouth]`` table).

    Attributes:
        steps: Optimiser steps.
        batch: Pairs per step.
        lr: Adam learning rate (cosine decay to a tenth).
        width, levels, size, full_res: The net (``MouthNet``) and the square's side.
        l1, perceptual, colour: Weights of the interior L1, the MobileNetV2 feature loss (0: off)
            and the interior mean-colour term.
        drop_layout: Share of pairs trained without the driver's layout.
        open_bias: Target draw weight is ``open_bias + opening`` (inner gap over width): small
            values oversample open mouths.
        teeth_bias: Source draw weight is ``1 + teeth_bias * teeth`` (``teeth``: share of the
            inner mouth lighter than the lips).
        gan, gan_start, critic_lr: Weight of the patch discriminator's loss on the net (0: off),
            the step it starts at (the L1 warm-up before it) and its own Adam learning rate.
        seed: Seed of the weights and of the pair sampling (per step).
        log_every, save_every: Steps between metrics lines / checkpoints and sample grids.
    """

    steps: int = 20000
    batch: int = 16
    lr: float = 1e-3
    width: int = 16
    levels: int = 3
    size: int = 64
    full_res: bool = False
    l1: float = 1.0
    perceptual: float = 0.1
    colour: float = 1.0
    drop_layout: float = 0.3
    open_bias: float = 0.05
    teeth_bias: float = 0.0
    gan: float = 0.0
    gan_start: int = 1000
    critic_lr: float = 2e-4
    seed: int = 0
    log_every: int = 25
    save_every: int = 200

    def __post_init__(self) -> None:
        check_schedule(self)
        if not 0.0 <= self.drop_layout <= 1.0 or self.open_bias <= 0:
            raise ValueError("drop_layout must be in [0, 1] and open_bias > 0")
        if min(self.teeth_bias, self.gan, self.gan_start) < 0 or self.critic_lr <= 0:
            raise ValueError("teeth_bias, gan and gan_start must be >= 0 and critic_lr > 0")


def check(config: MouthTrainConfig) -> None:
    """Refuse a run whose perceptual loss has no backbone (before any work is done)."""
    from facepaint.runtime.training.losses import mobilenet_path

    if config.perceptual > 0:
        mobilenet_path()


class MouthData:
    """Mouth squares (uint8) of every cached frame with their landmarks in square pixels.

    Args:
        clips: Cached clips (those with fewer than two frames are left out).
        size: The square's side.
    """

    def __init__(self, clips: list[CachedClip], size: int) -> None:
        self.topo = get_topology("mediapipe478")
        self.size = size
        squares, points, clip = [], [], []
        self.names = []
        for c, rec in enumerate(c for c in clips if len(c.crops) >= 2):
            self.names.append(rec.name)
            for crop, lm in zip(rec.crops, rec.landmarks, strict=True):
                m = mn.square_affine(lm, self.topo, size)
                squares.append(mn.cut(crop, m, size))
                points.append(mn.apply_affine(m, lm).astype(np.float32))
                clip.append(c)
        if not squares:
            raise InputError("no cached clip holds two frames to train the mouth net on")
        self.squares, self.points, self.clip = np.stack(squares), np.stack(points), np.asarray(clip)
        self.opening = np.asarray([_opening(p, self.topo) for p in self.points], np.float32)
        self.teeth = np.asarray([_teeth(sq, p, self.topo) for sq, p in zip(self.squares, self.points, strict=True)],
                                np.float32)
        self._ring = border_ring(size, size, 8).astype(np.float64)

    def draw(self, rng: np.random.Generator, n: int, bias: float, teeth: float = 0.0) -> list[tuple[int, int]]:
        """``n`` (source, target) index pairs of one clip each, targets weighted by opening,
        sources by the teeth they show (``MouthTrainConfig.teeth_bias``)."""
        w = bias + np.clip(self.opening, 0.0, 1.0)
        targets = rng.choice(len(w), n, p=w / w.sum())
        pairs = []
        for t in targets:
            same = np.flatnonzero((self.clip == self.clip[t]) & (np.arange(len(self.clip)) != t))
            ws = 1.0 + teeth * self.teeth[same]
            # Uniform draws stay the draws they were (numpy draws otherwise with p given).
            pairs.append((int(rng.choice(same, p=ws / ws.sum()) if teeth > 0 else rng.choice(same)), int(t)))
        return pairs

    def warp(self, source: np.ndarray, s: int, t: int) -> np.ndarray:
        """``source`` (square ``s``'s image, possibly recoloured) warped to square ``t``'s landmarks."""
        src, dst = self.points[s][self.topo.warp], self.points[t][self.topo.warp]
        inside = np.all((src > 1) & (src < self.size - 2) & (dst > 1) & (dst < self.size - 2), 1)
        src = np.concatenate([src[inside], self._ring])
        dst = np.concatenate([dst[inside], self._ring])
        mx, my = PiecewiseAffineWarp(triangulate(src), (self.size, self.size), 2).maps(src, dst)
        return cv2.remap(source, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def pair(self, rng: np.random.Generator, s: int, t: int, drop: bool) -> tuple[np.ndarray, np.ndarray]:
        """(net inputs, target in [-1, 1] CHW) of one pair, augmented (see the module notes)."""
        topo, size = self.topo, self.size
        colour = _colour_change(rng)
        source = colour(self.squares[s])
        if rng.random() < 0.5:
            q = int(rng.integers(35, 95))
            source = cv2.imdecode(cv2.imencode(".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED)
        target = colour(self.squares[t])
        p_s, p_t = self.points[s], self.points[t]
        layout = None
        if not drop:
            camera = _colour_change(rng)(self.squares[t])
            layout = mn.square_layout(camera, p_t[topo.lips_inner], p_t[topo.lips_outer], p_t[topo.lips_inner])
        x = mn.net_inputs(self.warp(source, s, t), source, mn.inner_mask(p_t[topo.lips_inner], size),
                          mn.inner_mask(p_s[topo.lips_inner], size), layout)
        y = target.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        if rng.random() < 0.5:
            x, y = x[..., ::-1], y[..., ::-1]
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    def batch(self, rng: np.random.Generator, pairs: list[tuple[int, int]], drop: float) -> tuple[torch.Tensor, ...]:
        """(inputs, targets) tensors of ``pairs``, the layout dropped with probability ``drop``."""
        rows = [self.pair(rng, s, t, bool(rng.random() < drop)) for s, t in pairs]
        return torch.from_numpy(np.stack([r[0] for r in rows])), torch.from_numpy(np.stack([r[1] for r in rows]))


def _opening(points: np.ndarray, topo) -> float:
    from facepaint.engine.geometry import mouth_openness

    return mouth_openness(points, topo)


def _teeth(square: np.ndarray, points: np.ndarray, topo) -> float:
    """Share of the inner mouth at least 1.3x as light as the lips' median (the teeth it shows)."""
    size = square.shape[0]
    inner = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inner, [np.round(points[topo.lips_inner, :2]).astype(np.int32)], 1)
    ring = mn.lips_ring(points[topo.lips_outer, :2], points[topo.lips_inner, :2], size)
    if inner.sum() < 8 or ring.sum() < 8:
        return 0.0
    luma = square.astype(np.float32) @ mn.LUMA
    return float((luma[inner > 0] >= 1.3 * np.median(luma[ring])).mean())


class PatchCritic(torch.nn.Module):
    """A small patch discriminator: (B, 3 + 1, S, S) image and target inner-lip mask -> (B, 1,
    S/8, S/8) scores (LSGAN: 1 real, 0 painted)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        act = torch.nn.LeakyReLU(0.2)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(4, width, 4, 2, 1), act,
            torch.nn.Conv2d(width, 2 * width, 4, 2, 1), act,
            torch.nn.Conv2d(2 * width, 4 * width, 4, 2, 1), act,
            torch.nn.Conv2d(4 * width, 1, 3, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Scores of ``image`` with the target's inner-lip ``mask``."""
        return self.body(torch.cat([image, mask], 1))


def _colour_change(rng: np.random.Generator):
    """A random camera: per-channel gains (tint), a gamma, sometimes greyscale; uint8 -> uint8."""
    gains = rng.uniform(0.75, 1.25, 3) * rng.uniform(0.8, 1.2)
    gamma = rng.uniform(0.75, 1.35)
    grey = rng.random() < 0.15
    lut = np.stack([np.clip(255.0 * (np.arange(256) / 255.0) ** gamma * g, 0, 255) for g in gains], 1)
    lut = lut.astype(np.uint8)

    def change(img: np.ndarray) -> np.ndarray:
        out = np.stack([lut[img[..., k], k] for k in range(3)], -1)
        if grey:
            out = np.repeat((out.astype(np.float32) @ mn.LUMA).astype(np.uint8)[..., None], 3, -1)
        return out

    return change


CRITIC = "mouth_critic"  # the discriminator's net and optimizer in the loop


def mouth_losses(net: mn.MouthNet, x: torch.Tensor, y: torch.Tensor, cfg: MouthTrainConfig,
                 perc: torch.nn.Module | None, critic: PatchCritic | None = None) -> dict[str, torch.Tensor]:
    """The loss terms and their weighted sum (``mouth``) on one batch; with ``critic``, also its
    adversarial term (in ``mouth``) and the critic's own loss (``mouth_critic``)."""
    rgb, alpha = net(x)
    out = mn.composite(rgb, alpha, x[:, :3])
    region = torch.nn.functional.max_pool2d(x[:, 6:7], 2 * mn.ALPHA_GROW + 1, 1, mn.ALPHA_GROW)
    l1 = (region * (out - y).abs()).sum() / (3 * region.sum() + 1e-6)
    inner = x[:, 6:7]
    area = inner.sum((2, 3)) + 1e-6
    colour = (((out - y) * inner).sum((2, 3)) / area).abs().mean()
    terms = {"l1": l1, "colour": colour,
             "l1_warp": ((region * (x[:, :3] - y).abs()).sum() / (3 * region.sum() + 1e-6)).detach()}
    if perc is not None:
        terms["perceptual"] = perc(out, y)
    terms[MOUTH] = cfg.l1 * l1 + cfg.colour * colour + cfg.perceptual * terms.get("perceptual", 0.0)
    if critic is not None:
        _adversarial(terms, critic, out, y, region, inner, cfg.gan)
    return terms


def _adversarial(terms: dict[str, torch.Tensor], critic: PatchCritic, out: torch.Tensor, y: torch.Tensor,
                 region: torch.Tensor, inner: torch.Tensor, weight: float) -> None:
    """LSGAN terms over the painted region only: both images are the truth outside it (the
    warp there is not the net's doing), and patches count by how much of the region they hold."""
    painted = region * out + (1.0 - region) * y
    share = torch.nn.functional.avg_pool2d(region, 8)
    share = share / (share.sum() + 1e-6)
    gan = (share * (critic(painted, inner) - 1.0) ** 2).sum()
    terms["gan"] = gan
    terms[MOUTH] = terms[MOUTH] + weight * gan
    real, fake = critic(y, inner), critic(painted.detach(), inner)
    terms[CRITIC] = 0.5 * (share * ((real - 1.0) ** 2 + fake ** 2)).sum()


class MouthTrainable(Trainable):
    """A ``MouthNet`` on same-clip pairs of mouth squares."""

    def __init__(self, config: MouthTrainConfig, data: TrainData, device: torch.device) -> None:
        from facepaint.runtime.training.losses import PerceptualLoss

        self.cfg, self.data = config, MouthData(data.clips, config.size)
        self.net = mn.MouthNet(config.width, config.levels, config.size, config.full_res).to(device)
        nets: dict[str, torch.nn.Module] = {MOUTH: self.net}
        opts = {MOUTH: torch.optim.Adam(self.net.parameters(), lr=config.lr)}
        self.critic = PatchCritic().to(device) if config.gan > 0 else None
        if self.critic is not None:
            nets[CRITIC] = self.critic
            opts[CRITIC] = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, betas=(0.5, 0.999))
        super().__init__(nets, opts, device)
        self.perc = PerceptualLoss().to(device) if config.perceptual > 0 else None
        val = MouthData(data.val, config.size) if data.val else self.data
        rng = np.random.default_rng(12345)
        # Fixed pairs: the widest-open targets of a few clips, with and without the layout.
        self._fixed = (val, val.draw(rng, 6, 0.01))
        self._val = (val, val.draw(np.random.default_rng(54321), 32, config.open_bias))

    def batch(self, rng: np.random.Generator, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of ``batch`` random pairs."""
        pairs = self.data.draw(rng, self.cfg.batch, self.cfg.open_bias, self.cfg.teeth_bias)
        x, y = self.data.batch(rng, pairs, self.cfg.drop_layout)
        return x.to(self.device), y.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """``mouth_losses``, with the critic from step ``gan_start``."""
        critic = self.critic if step >= self.cfg.gan_start else None
        return mouth_losses(self.net, *batch, self.cfg, self.perc, critic)

    def lr(self, name: str, step: int) -> float:
        """The net: cosine decay over the run; the critic: constant."""
        return cosine(self.cfg.lr, step, self.cfg.steps) if name == MOUTH else self.cfg.critic_lr

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Interior L1 of fixed pairs (validation clips when given): the net with and without the
        layout, and the unpainted warp."""
        data, pairs = self._val
        self.net.eval()
        figures = {}
        for name, drop in (("val_l1", 0.0), ("val_l1_blind", 1.0)):
            x, y = data.batch(np.random.default_rng(7), pairs, drop)
            terms = mouth_losses(self.net, x.to(self.device), y.to(self.device), self.cfg, None)
            figures[name] = float(terms["l1"])
            figures["val_l1_warp"] = float(terms["l1_warp"])
        self.net.train()
        return figures

    @torch.no_grad()
    def sample(self) -> np.ndarray:
        """Rows of source | warp | layout | output | output without layout | truth, 2x."""
        data, pairs = self._fixed
        self.net.eval()
        x, y = data.batch(np.random.default_rng(3), pairs, 0.0)
        blind = x.clone()
        blind[:, 8:] = 0
        outs = []
        for v in (x, blind):
            rgb, alpha = self.net(v.to(self.device))
            outs.append(mn.composite(rgb, alpha, v[:, :3].to(self.device)).cpu())
        self.net.train()
        lay = (x[:, 8:9] * 0.5).repeat(1, 3, 1, 1)
        rows = torch.cat([x[:, 3:6], x[:, :3], lay, outs[0], outs[1], y], 3)
        grid = torch.cat(list(rows), 1).permute(1, 2, 0).numpy()
        grid = np.clip((grid + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        return cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)

    def export(self, folder: Path, training: dict[str, Any]) -> list[Path]:
        """``mouth_net.safetensors`` + JSON."""
        notes = {**training, "clips": self.data.names, "squares": int(len(self.data.squares)),
                 **dataclasses.asdict(self.cfg)}
        arch = {"width": self.cfg.width, "levels": self.cfg.levels, "size": self.cfg.size,
                "full_res": self.cfg.full_res}
        return [save_model(folder, MOUTH, self.net.cpu(), arch, notes)]


def build(config: MouthTrainConfig, data: TrainData, device: torch.device) -> MouthTrainable:
    """The mouth net's ``Trainable``."""
    return MouthTrainable(config, data, device)
