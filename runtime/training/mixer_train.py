"""Training of ``BackgroundMixerNet`` on self-supervised pairs from the clip cache.

A pair is two fixed-box crops of one clip (the camera does not move): the target frame's own
person (its head hull mask, as the engine makes it) is the reenacted face, and the other frame
with its person inpainted away is the background. The mixed output must be the target frame:
the net learns where the person's edge goes and how to fill the background that the other
frame's person hid. Losses: L1 to the target, total variation and L2 on the mask. No
perceptual loss: no backbone licensed for it is installed here (see the model card).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from facepaint.engine.errors import InputError
from facepaint.engine.neural.background_mixer import BackgroundMixerNet, composite
from facepaint.engine.neural.model_files import MIXER
from facepaint.engine.source_face import SourceConfig, person_layers
from facepaint.engine.topology import get_topology
from facepaint.runtime.training.lmt_cache import crop_landmarks
from facepaint.runtime.training.lmt_common import MetricsLog, load_checkpoint, open_run, save_checkpoint
from facepaint.runtime.training.publish import save_model


@dataclass(frozen=True)
class MixerTrainConfig:
    """Mixer training settings.

    Attributes:
        steps: Optimiser steps.
        batch: Pairs per step.
        lr: Adam learning rate (cosine decay to a tenth).
        width, levels, size: Net size and input side (see ``BackgroundMixerNet``); cached
            crops are resized to ``size``.
        w_tv, w_mask: Weights of the mask's total variation and L2.
        seed: Seed of the weights and of the pair sampling (per step).
        log_every, checkpoint_every: Steps between metrics lines / checkpoints.
        device: ``cpu`` or ``cuda``.
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
    checkpoint_every: int = 250
    device: str = "cpu"


class MixerData:
    """Crops, person masks and person-removed backgrounds of every cached clip (float32 in [0, 1]).

    Args:
        cache: Folder of ``.npz`` clips (see ``lmt_cache``).
        size: Side the crops are resized to (person layers are made at the cached size first).
    """

    def __init__(self, cache: Path, size: int = 64) -> None:
        files = sorted(Path(cache).glob("*.npz"))
        if not files:
            raise InputError(f"no cached clips (*.npz) in {cache}; build the cache first")
        topo, cfg = get_topology("mediapipe478"), SourceConfig()
        crops, masks, backs, clip = [], [], [], []
        self.names = []
        for c, f in enumerate(files):
            rec = np.load(f)
            if len(rec["crops"]) < 2:
                continue
            self.names.append(f.stem)
            size = rec["crops"].shape[1]
            lms = crop_landmarks(rec["landmarks"][rec["crop_index"]], rec["crop_box"], size)
            for img, lm in zip(rec["crops"], lms, strict=True):
                bg, mask = person_layers(img, lm.astype(np.float64), topo, cfg)
                img, mask, bg = (cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in (img, mask, bg))
                crops.append(img)
                masks.append(mask)
                backs.append(bg)
                clip.append(c)
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
    """The loss terms and their weighted sum (``total``) on one batch."""
    rgb, m = net(face, mask, back)
    out = composite(rgb, m, back)
    l1 = (out - face).abs().mean()
    tv = (m[..., 1:, :] - m[..., :-1, :]).abs().mean() + (m[..., 1:] - m[..., :-1]).abs().mean()
    l2 = (m ** 2).mean()
    return {"total": l1 + cfg.w_tv * tv + cfg.w_mask * l2, "l1": l1, "mask_tv": tv, "mask_l2": l2}


def train_background_mixer(cache: Path, out: Path, config: MixerTrainConfig = MixerTrainConfig(),
                           resume: bool = False) -> Path:
    """Train the mixer on a cache; write ``background_mixer.safetensors`` (fp16) into ``out``.

    Args:
        cache: Training cache folder (``lmt_cache`` output).
        out: Run folder (config, checkpoints, metrics.jsonl, final weights).
        config: Settings.
        resume: Continue the run in ``out`` from its checkpoint.

    Returns:
        The final weights path.
    """
    torch.manual_seed(config.seed)
    start = open_run(out, config, resume)
    data = MixerData(cache, config.size)
    dev = torch.device(config.device)
    net = BackgroundMixerNet(config.width, config.levels, config.size).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    if start:
        load_checkpoint(out, {"mixer": net}, {"mixer": opt})
    log = MetricsLog(out)
    for step in range(start, config.steps):
        rng = np.random.default_rng([config.seed, step])
        face, mask, back = (t.to(dev) for t in data.batch(rng, config.batch))
        terms = mixer_losses(net, face, mask, back, config)
        for group in opt.param_groups:
            group["lr"] = config.lr * (0.1 + 0.45 * (1 + np.cos(np.pi * step / config.steps)))
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            log(step + 1, **{k: float(v.detach()) for k, v in terms.items()})
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(out, step + 1, {"mixer": net}, {"mixer": opt})
    training = {"cache": str(cache), "clips": data.names, "crops": int(len(data.crops)), **asdict(config)}
    arch = {"width": config.width, "levels": config.levels, "size": config.size}
    return save_model(out, MIXER, net.cpu(), arch, training)
