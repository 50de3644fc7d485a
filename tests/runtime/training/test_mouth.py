"""The mouth net learns from mouth squares of a real clip, and its checkpoint and weights round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facepaint.engine.neural.model_files import MOUTH, load_torch
from facepaint.engine.neural.mouth_net import IN_CHANNELS, MouthNet
from facepaint.runtime.training.cache import load_cache
from facepaint.runtime.training.checkpoint import load_state, save_state
from facepaint.runtime.training.loop import TrainData
from facepaint.runtime.training.mouth import (
    CRITIC,
    MouthData,
    MouthTrainable,
    MouthTrainConfig,
    PatchCritic,
    mouth_losses,
)

SMALL = MouthTrainConfig(batch=4, width=8, levels=2, perceptual=0.0)


def test_shapes_and_the_alpha_stays_inside_the_grown_inner_lips(tiny_cache):
    data = MouthData(load_cache(tiny_cache)[1], 64)
    assert data.squares.shape[1:] == (64, 64, 3) and data.opening.max() > 0.1  # the clip opens its mouth
    x, y = data.batch(np.random.default_rng(0), data.draw(np.random.default_rng(0), 3, 0.05), 0.0)
    assert x.shape == (3, IN_CHANNELS, 64, 64) and y.shape == (3, 3, 64, 64)
    assert float(x[:, 9].min()) == 1.0  # the layout is there (drop 0)
    with torch.no_grad():
        rgb, alpha = MouthNet()(x)
    assert rgb.shape == (3, 3, 64, 64) and alpha.shape == (3, 1, 64, 64)
    far = torch.nn.functional.max_pool2d(x[:, 6:7], 9, 1, 4) == 0  # well outside the target's inner lips
    assert float(alpha[far].max()) == 0.0
    assert 300_000 < sum(p.numel() for p in MouthNet().parameters()) < 700_000
    blind, _ = data.batch(np.random.default_rng(0), data.draw(np.random.default_rng(0), 3, 0.05), 1.0)
    assert float(blind[:, 8:].abs().max()) == 0.0


def test_overfitting_a_few_crops_lowers_the_loss_five_times(tiny_cache):
    torch.manual_seed(0)
    data = MouthData(load_cache(tiny_cache)[1], 64)
    rng = np.random.default_rng(1)
    x, y = data.batch(rng, data.draw(rng, 4, 0.01), 0.0)
    net = MouthNet(width=8, levels=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = float(mouth_losses(net, x, y, SMALL, None)[MOUTH].detach())
    for _ in range(200):
        terms = mouth_losses(net, x, y, SMALL, None)
        opt.zero_grad()
        terms[MOUTH].backward()
        opt.step()
    assert float(terms[MOUTH].detach()) < first / 5


def test_the_patch_critic_trains_on_its_own_term(tiny_cache):
    torch.manual_seed(0)
    data = MouthData(load_cache(tiny_cache)[1], 64)
    rng = np.random.default_rng(2)
    x, y = data.batch(rng, data.draw(rng, 4, 0.01), 0.0)
    net, critic = MouthNet(width=8, levels=2, full_res=True), PatchCritic(8)
    cfg = MouthTrainConfig(batch=4, perceptual=0.0, gan=0.1)
    plain = mouth_losses(net, x, y, cfg, None)
    terms = mouth_losses(net, x, y, cfg, None, critic)
    assert CRITIC not in plain and float(terms[CRITIC]) > 0
    assert float(terms[MOUTH]) == pytest.approx(float(plain[MOUTH]) + 0.1 * float(terms["gan"]), rel=1e-5)
    terms[CRITIC].backward()  # the critic's term reaches the critic, not the net
    assert all(p.grad is None for p in net.parameters()) and any(p.grad is not None for p in critic.parameters())


def test_checkpoint_and_exported_weights_round_trip(tiny_cache, tmp_path):
    clips = load_cache(tiny_cache)[1]
    model = MouthTrainable(SMALL, TrainData(tiny_cache, clips), torch.device("cpu"))
    batch = model.batch(np.random.default_rng(0), 0)
    for step in range(2):
        terms = model.loss(batch, step)
        model.optimizers[MOUTH].zero_grad()
        terms[MOUTH].backward()
        model.optimizers[MOUTH].step()
    save_state(tmp_path / "ck", 2, "h", model.nets, model.optimizers)
    again = MouthTrainable(SMALL, TrainData(tiny_cache, clips), torch.device("cpu"))
    assert load_state(tmp_path / "ck", "h", again.nets, again.optimizers, torch.device("cpu")) == 2
    for a, b in zip(model.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    moments = again.optimizers[MOUTH].state_dict()["state"]
    assert moments and all(torch.equal(v["exp_avg"], model.optimizers[MOUTH].state_dict()["state"][k]["exp_avg"])
                           for k, v in moments.items())
    model.export(tmp_path / "w", {"step": 2})
    loaded = load_torch(MOUTH, tmp_path / "w")
    with torch.no_grad():
        want, got = model.net.eval()(batch[0])[0], loaded(batch[0])[0]
    assert float((want - got).abs().max()) < 0.02  # fp16 weights
