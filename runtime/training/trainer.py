"""The generator's training loop: losses, resumable checkpoints, metrics and sample grids.

An output folder holds::

    config.json               TrainConfig + GeneratorConfig and their sha256 ("config_hash")
    checkpoint/state.safetensors   generator, discriminator, both Adam states, torch RNG state
    checkpoint/state.json     step, numpy RNG state, Adam hyper-parameters, config_hash
    weights/face_generator.safetensors + face_generator.json   fp16 export (what --weights loads)
    metrics.jsonl             one line per logged step
    samples/step_XXXXXXX.png  source | coarse | output | driving (truth), four pairs

``--resume`` refuses a checkpoint whose config hash differs from the run's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.neural.generator import CoarseToFineGenerator, GeneratorConfig
from facepaint.engine.neural.model_files import GENERATOR
from facepaint.runtime.training.cache import CachedClip
from facepaint.runtime.training.checkpoint import load_state, save_state
from facepaint.runtime.training.data import Batch, PairSampler, make_batch
from facepaint.runtime.training.losses import PatchDiscriminator, PerceptualLoss, gan_losses
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (hashed into config.json; a resume must match).

    Attributes:
        batch: Pairs per step.
        lr: Adam learning rate (generator and discriminator).
        seed: Seed of numpy and torch.
        l1: Weight of the (region-weighted) L1 loss.
        region_gain: Extra L1 weight on mouth and eyes.
        perceptual: Weight of the MobileNetV2 feature loss (0: off).
        gan: Weight of the LSGAN loss (0: no discriminator).
        feature_matching: Weight of the discriminator feature-matching loss.
        seg: Weight of the segmentation cross-entropy.
        gan_start: Step at which the adversarial losses switch on.
        clip: Largest gradient norm of each network per step (the unnormalised generator blew up
            at lr 1e-3 without it: losses went from 2 to 7e4 within 20 steps).
    """

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


def config_hash(train: TrainConfig, gen: GeneratorConfig) -> str:
    """sha256 of both configs."""
    text = json.dumps({"train": dataclasses.asdict(train), "generator": dataclasses.asdict(gen)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Trainer:
    """Trains a CoarseToFineGenerator on cached clips.

    Args:
        clips: Training clips.
        out: Output folder.
        train: Training settings.
        gen: Generator architecture.
        device: ``cpu`` or ``cuda``.
    """

    def __init__(self, clips: list[CachedClip], out: Path, train: TrainConfig, gen: GeneratorConfig,
                 device: str = "cpu") -> None:
        if not clips:
            raise InputError("no training clips")
        self.out, self.cfg, self.gen_cfg, self.device = Path(out), train, gen, torch.device(device)
        self.hash = config_hash(train, gen)
        torch.manual_seed(train.seed)
        self.rng = np.random.default_rng(train.seed)
        self.sampler = PairSampler(clips, self.rng, train.region_gain)
        self.gen = CoarseToFineGenerator(gen).to(self.device)
        self.disc = PatchDiscriminator(3 + 7).to(self.device) if train.gan > 0 else None
        self.perc = PerceptualLoss().to(self.device) if train.perceptual > 0 else None
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=train.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=train.lr, betas=(0.5, 0.999)) if self.disc else None
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self._fixed = [(clips[i % len(clips)], 0, len(clips[i % len(clips)].crops) // 2) for i in range(4)]

    # -- checkpoints ---------------------------------------------------------------------------
    def write_config(self) -> None:
        """config.json (refused when it exists with another hash)."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "config.json"
        if path.is_file() and json.loads(path.read_text()).get("config_hash") != self.hash:
            raise ConfigError(f"{self.out} holds a run with other settings; use another --out or the same settings")
        body = {"train": dataclasses.asdict(self.cfg), "generator": dataclasses.asdict(self.gen_cfg),
                "config_hash": self.hash}
        path.write_text(json.dumps(body, indent=1))

    def save(self) -> None:
        """Checkpoint (full state) and fp16 weights export."""
        save_state(self.out / "checkpoint", self)
        training = {"step": self.step, "device": str(self.device), **dataclasses.asdict(self.cfg)}
        save_model(self.out / "weights", GENERATOR, self.gen, dataclasses.asdict(self.gen_cfg), training)

    def resume(self) -> bool:
        """Load the checkpoint in ``out`` if there is one; True when loaded."""
        return load_state(self.out / "checkpoint", self)

    # -- one step ------------------------------------------------------------------------------
    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        arrays = (batch.inputs, batch.target, batch.seg, batch.weight)
        return tuple(torch.from_numpy(a).to(self.device) for a in arrays)

    def train_step(self, batch: Batch | None = None) -> dict[str, float]:
        """One optimisation step on ``batch`` (a fresh random one when None); returns the losses."""
        batch = self.sampler.sample(self.cfg.batch) if batch is None else batch
        x, target, seg, weight = self._tensors(batch)
        use_gan = self.disc is not None and self.step >= self.cfg.gan_start
        with torch.autocast(self.device.type, enabled=self.amp):
            face, logits, residual = self.gen(x)
            losses = {"l1": (weight * (face - target).abs()).mean(), "seg": F.cross_entropy(logits.float(), seg)}
            if self.perc is not None:
                losses["perceptual"] = self.perc(face, target)
            if use_gan:
                assert self.disc is not None
                g_adv, fm, d_loss = gan_losses(self.disc, face, target, x[:, 6:])
                losses.update(gan=g_adv, fm=fm)
        total = (self.cfg.l1 * losses["l1"] + self.cfg.seg * losses["seg"]
                 + self.cfg.perceptual * losses.get("perceptual", 0.0)
                 + self.cfg.gan * losses.get("gan", 0.0) + self.cfg.feature_matching * losses.get("fm", 0.0))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self._clipped_step(self.opt_g, self.gen)
        if use_gan:
            assert self.disc is not None and self.opt_d is not None
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self._clipped_step(self.opt_d, self.disc)
            losses["d"] = d_loss
        self.scaler.update()
        self.step += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["total"] = float(total.detach())
        out["residual"] = float(residual.detach().abs().mean())
        return out

    def _clipped_step(self, opt: torch.optim.Optimizer, net: torch.nn.Module) -> None:
        self.scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.clip)
        self.scaler.step(opt)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, steps: int, log_every: int = 20, save_every: int = 200, sample_every: int = 200,
            val: list[CachedClip] | None = None, progress=None) -> None:
        """Train until ``self.step == steps`` (checkpoint, samples and metrics on the way)."""
        self.write_config()
        val_batch = make_batch([(c, 0, len(c.crops) * k // 4) for c in (val or [])[:8] for k in (1, 3)],
                               self.cfg.region_gain) if val else None
        t0, acc = time.perf_counter(), []
        while self.step < steps:
            acc.append(self.train_step())
            if self.step % log_every == 0 or self.step == steps:
                row = {k: float(np.mean([a[k] for a in acc if k in a])) for k in acc[-1]}
                row.update(step=self.step, s_per_step=(time.perf_counter() - t0) / len(acc))
                if val_batch is not None:
                    row.update(self.validate(val_batch))
                with open(self.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                if progress is not None:
                    progress(row)
                t0, acc = time.perf_counter(), []
            if self.step % sample_every == 0 or self.step == steps:
                self.sample_grid()
            if self.step % save_every == 0 or self.step == steps:
                self.save()

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        """Validation L1 of the output and of the coarse warp (both in [-1, 1] units)."""
        self.gen.eval()
        x, target, _, _ = self._tensors(batch)
        face, _, _ = self.gen(x)
        self.gen.train()
        return {"val_l1": float((face - target).abs().mean()),
                "val_l1_coarse": float((x[:, 3:6] - target).abs().mean())}

    @torch.no_grad()
    def sample_grid(self) -> Path:
        """samples/step_N.png: rows of source | coarse | output | truth."""
        import cv2

        self.gen.eval()
        x, target, _, _ = self._tensors(make_batch(self._fixed))
        face, logits, _ = self.gen(x)
        self.gen.train()
        rows = torch.cat([x[:, :3], x[:, 3:6], face, target], 3)
        grid = torch.cat(list(rows), 1).permute(1, 2, 0).float().cpu().numpy()
        image = np.clip((grid + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return path
