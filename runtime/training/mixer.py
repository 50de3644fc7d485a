"""Training of ``BackgroundMixerNet`` on self-supervised pairs from the clip cache's still-box crops.

A pair is two fixed-box crops of one clip (the camera does not move): the target frame's own
person (its head hull mask, as the engine makes it) is the reenacted face, and the other frame
with its person inpainted away is the background. The mixed output must be the target frame:
the net learns where the person's edge goes and how to fill the background that the other
frame's person hid. Losses: L1 to the target, total variation and L2 on the mask. No
perceptual loss: no backbone licensed for it is installed here (see the model card).
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
from facepaint.engine.neural.background_mixer import BackgroundMixerNet, composite
from facepaint.engine.neural.model_files import MIXER
from facepaint.engine.source_face import SourceConfig, person_layers
from facepaint.engine.topology import get_topology
from facepaint.runtime.training.cache import CachedClip
from facepaint.runtime.training.loop import Trainable, TrainData, check_schedule, cosine
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class MixerTrainConfig:
    """Mixer training settings (the ``[mixer]`` table).

    Attributes:
        steps: Optimiser steps.
        batch: Pairs per step.
        lr: Adam learning rate (cosine decay to a tenth).
        width, levels, size: Net size and input side (see ``BackgroundMixerNet``); cached
            crops are resized to ``size``.
        w_tv, w_mask: Weights of the mask's total variation and L2.
        seed: Seed of the weights and of the pair sampling (per step).
        log_every, save_every: Steps between metrics lines / checkpoints.
    """

    steps: int = 1500
    batch: int = 8
    lr: float = 1e-3
    width: int = 12
    levels: int = 3
    size: int = 64
    w_tv: float = 0.01
    w_mask: float = 0.002
    seed: int = 0
    log_every: int = 50
    save_every: int = 250

    def __post_init__(self) -> None:
        check_schedule(self)


class MixerData:
    """Still-box crops, person masks and person-removed backgrounds of the cached clips (float32
    in [0, 1]).

    Args:
        clips: Cached clips (those with fewer than two still crops are left out).
        size: Side the crops are resized to (person layers are made at the cached size first).
    """

    def __init__(self, clips: list[CachedClip], size: int = 64) -> None:
        topo, cfg = get_topology("mediapipe478"), SourceConfig()
        crops, masks, backs, clip = [], [], [], []
        self.names = []
        for c, rec in enumerate(clips):
            if len(rec.still_crops) < 2:
                continue
            self.names.append(rec.name)
            for img, lm in zip(rec.still_crops, rec.still_landmarks(), strict=True):
                bg, mask = person_layers(img, lm.astype(np.float64), topo, cfg)
                img, mask, bg = (cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in (img, mask, bg))
                crops.append(img)
                masks.append(mask)
                backs.append(bg)
                clip.append(c)
        if not crops:
            raise InputError("no cached clip holds two still-box crops to train the mixer on; rebuild the cache "
                             "with cache.still_crops >= 2")
        self.crops = np.stack(crops).astype(np.float32) / 255.0
        self.masks = np.stack(masks)[:, None].astype(np.float32)
        self.backs = np.stack(backs).astype(np.float32) / 255.0
        self.clip = np.asarray(clip)

    def batch(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(face, mask, background) NCHW tensors of ``n`` random same-clip pairs (random flips);
        the face is also the target."""
        j = rng.integers(0, len(self.crops), n)
        same = [np.flatnonzero((self.clip == self.clip[k]) & (np.arange(len(self.clip)) != k)) for k in j]
        i = np.asarray([rng.choice(s) for s in same])
        face = torch.from_numpy(self.crops[j]).permute(0, 3, 1, 2)
        back = torch.from_numpy(self.backs[i]).permute(0, 3, 1, 2)
        mask = torch.from_numpy(self.masks[j])
        flip = torch.from_numpy(rng.random(n) < 0.5)
        face, mask, back = (torch.where(flip[:, None, None, None], t.flip(-1), t) for t in (face, mask, back))
        return face.contiguous(), mask.contiguous(), back.contiguous()


def mixer_losses(net: BackgroundMixerNet, face, mask, back, cfg: MixerTrainConfig) -> dict[str, torch.Tensor]:
    """The loss terms and their weighted sum (``background_mixer``) on one batch."""
    rgb, m = net(face, mask, back)
    out = composite(rgb, m, back)
    l1 = (out - face).abs().mean()
    tv = (m[..., 1:, :] - m[..., :-1, :]).abs().mean() + (m[..., 1:] - m[..., :-1]).abs().mean()
    l2 = (m ** 2).mean()
    return {MIXER: l1 + cfg.w_tv * tv + cfg.w_mask * l2, "l1": l1, "mask_tv": tv, "mask_l2": l2}


class MixerTrainable(Trainable):
    """A ``BackgroundMixerNet`` on same-clip pairs of still-box crops."""

    def __init__(self, config: MixerTrainConfig, data: TrainData, device: torch.device) -> None:
        self.cfg, self.data = config, MixerData(data.clips, config.size)
        self.net = BackgroundMixerNet(config.width, config.levels, config.size).to(device)
        super().__init__({MIXER: self.net}, {MIXER: torch.optim.Adam(self.net.parameters(), lr=config.lr)}, device)

    def batch(self, rng: np.random.Generator, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(face, mask, background) of ``batch`` random pairs."""
        face, mask, back = self.data.batch(rng, self.cfg.batch)
        return face.to(self.device), mask.to(self.device), back.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """``mixer_losses``."""
        face, mask, back = batch
        return mixer_losses(self.net, face, mask, back, self.cfg)

    def lr(self, name: str, step: int) -> float:
        """Cosine decay over the run."""
        return cosine(self.cfg.lr, step, self.cfg.steps)

    def export(self, folder: Path, training: dict[str, Any]) -> list[Path]:
        """``background_mixer.safetensors`` + JSON."""
        notes = {**training, "clips": self.data.names, "crops": int(len(self.data.crops)),
                 **dataclasses.asdict(self.cfg)}
        arch = {"width": self.cfg.width, "levels": self.cfg.levels, "size": self.cfg.size}
        return [save_model(folder, MIXER, self.net.cpu(), arch, notes)]


def build(config: MixerTrainConfig, data: TrainData, device: torch.device) -> MixerTrainable:
    """The background mixer's ``Trainable``."""
    return MixerTrainable(config, data, device)
