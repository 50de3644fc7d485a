"""Each trained model learns from the cache: it overfits a few pairs of a real clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facepaint.engine.neural.background_mixer import BackgroundMixerNet, composite
from facepaint.engine.neural.landmark_transformer import AURegressor, LandmarkTransformerNet
from facepaint.runtime.training.cache import load_cache
from facepaint.runtime.training.data import make_batch
from facepaint.runtime.training.generator import GeneratorTrainable, GeneratorTrainConfig
from facepaint.runtime.training.loop import TrainData
from facepaint.runtime.training.mixer import MixerData, MixerTrainConfig
from facepaint.runtime.training.transformer import LandmarkData, TransformerTrainConfig, lmt_losses, mesh_edges


def test_transformer_shapes_and_zero_start(tiny_cache):
    data = LandmarkData(load_cache(tiny_cache)[1])
    net = LandmarkTransformerNet(hidden=32, layers=2)
    src = torch.from_numpy(data.canon[:3])
    with torch.no_grad():
        delta = net(src, torch.from_numpy(data.au[:3]))
    assert delta.shape == (3, 478, 3)
    assert float(delta.abs().max()) == 0.0
    assert AURegressor(16)(src).shape == (3, 17)


def test_transformer_overfits_a_few_pairs(tiny_cache):
    torch.manual_seed(0)
    data = LandmarkData(load_cache(tiny_cache)[1])
    a, b = np.arange(8), (np.arange(8) + 3) % 8
    src, tgt = torch.from_numpy(data.canon[a]), torch.from_numpy(data.canon[b])
    au = torch.from_numpy(data.au[b])
    net, reg = LandmarkTransformerNet(hidden=64, layers=2), AURegressor(16)
    net.mean_shape.copy_(torch.from_numpy(data.canon.mean(0)))
    edges = torch.from_numpy(mesh_edges(data.canon.mean(0)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    # The AU regressor is untrained here: its term is left out of this fit.
    cfg = TransformerTrainConfig(w_au=0.0)
    first = float(lmt_losses(net, reg, src, au, tgt, edges, cfg)["landmark_transformer"].detach())
    for _ in range(150):
        terms = lmt_losses(net, reg, src, au, tgt, edges, cfg)
        opt.zero_grad()
        terms["landmark_transformer"].backward()
        opt.step()
    assert float(terms["landmark_transformer"].detach()) < first / 5


def test_mixer_overfits_a_few_pairs(tiny_cache):
    """A darkened face (a colour error inside the person) must be corrected: the fit that a conv
    net can make from what it sees. (The true background behind the other frame's person cannot
    be memorised by a net with no notion of position: that part of the loss stays.)"""
    torch.manual_seed(0)
    data = MixerData(load_cache(tiny_cache)[1], size=32)
    face, mask, back = data.batch(np.random.default_rng(0), 4)
    dark = face * 0.7
    net = BackgroundMixerNet(width=8, levels=2, size=32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    cfg = MixerTrainConfig(w_mask=0.0)

    def loss() -> torch.Tensor:
        rgb, m = net(dark, mask, back)
        return (composite(rgb, m, back) - face).abs().mean() + cfg.w_tv * (m[..., 1:] - m[..., :-1]).abs().mean()

    first = float(loss().detach())
    for _ in range(150):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert float(value.detach()) < first / 5


@pytest.mark.slow
def test_generator_overfitting_eight_frames_lowers_the_loss_5x(tiny_cache):
    clips = load_cache(tiny_cache)[1]
    torch.manual_seed(0)
    # The training objective without its pretrained and adversarial terms (L1 + segmentation), at
    # 16 px so that 1000 steps take about a minute. The generator starts at the warp, already
    # close to the truth, so its L1 term falls slowly; 5x is reached at about 700 steps.
    cfg = GeneratorTrainConfig(batch=8, lr=1e-3, perceptual=0.0, gan=0.0, size=16, width=32, levels=2, blocks=1)
    small = [_small_clip(c) for c in clips]
    model = GeneratorTrainable(cfg, TrainData(tiny_cache, small), torch.device("cpu"))
    batch = make_batch([(small[0], i, (i + 4) % 8) for i in range(8)])
    opt = model.optimizers["generator"]
    losses = []
    for step in range(1000):
        terms = model.loss(batch, step)
        opt.zero_grad()
        terms["generator"].backward()
        opt.step()
        losses.append(float(terms["generator"].detach()))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 5


def _small_clip(clip):
    """``clip`` with its aligned crops and landmarks at 16 px."""
    import dataclasses

    import cv2

    crops = np.stack([cv2.resize(c, (16, 16), interpolation=cv2.INTER_AREA) for c in clip.crops])
    return dataclasses.replace(clip, crops=crops, landmarks=clip.landmarks * (16 / clip.crops.shape[1]))
