"""Training of the neural landmark transformer and background mixer on a tiny real cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facepaint.engine.errors import ConfigError, ModelError
from facepaint.engine.neural.background_mixer import BackgroundMixerNet, composite
from facepaint.engine.neural.landmark_transformer import AURegressor, LandmarkTransformerNet
from facepaint.engine.neural.model_files import TRANSFORMER, load_torch
from facepaint.runtime.training.lmt_cache import ClipCacheConfig, build_clip_cache
from facepaint.runtime.training.lmt_common import load_checkpoint, save_checkpoint
from facepaint.runtime.training.lmt_train import (
    LandmarkData,
    LmtTrainConfig,
    lmt_losses,
    mesh_edges,
    train_landmark_transformer,
)
from facepaint.runtime.training.mixer_train import MixerData, MixerTrainConfig


@pytest.fixture(scope="module")
def tiny_cache(media: Path, tmp_path_factory) -> Path:
    """Cache of 10 tracked frames (4 crops) of lp_d10 (talking, wide mouth openings, blinks)."""
    clips = tmp_path_factory.mktemp("clips")
    (clips / "lp_d10.mp4").symlink_to(media / "driving" / "lp_d10.mp4")
    out = tmp_path_factory.mktemp("cache")
    build_clip_cache(clips, out, ClipCacheConfig(max_frames=10, crops=4, crop_size=64))
    return out


def test_cache_holds_tracked_frames_and_fixed_box_crops(tiny_cache):
    rec = np.load(tiny_cache / "lp_d10.npz")
    assert rec["landmarks"].shape == (10, 478, 3) and rec["au"].shape == (10, 20)
    assert rec["crops"].shape == (4, 64, 64, 3) and rec["crops"].dtype == np.uint8
    # Frames spread over the clip (448 frames), not the first ten.
    assert rec["frame"][-1] > 300
    # The mouth opens and closes in lp_d10: the jaw AU varies.
    assert np.ptp(rec["au"][:, 15]) > 1.0


def test_transformer_shapes_and_zero_start(tiny_cache):
    data = LandmarkData(tiny_cache)
    net = LandmarkTransformerNet(hidden=32, layers=2)
    src = torch.from_numpy(data.canon[:3])
    with torch.no_grad():
        delta = net(src, torch.from_numpy(data.au[:3]))
    assert delta.shape == (3, 478, 3)
    assert float(delta.abs().max()) == 0.0
    assert AURegressor(16)(src).shape == (3, 17)


def test_transformer_overfits_a_few_pairs(tiny_cache):
    torch.manual_seed(0)
    data = LandmarkData(tiny_cache)
    a, b = np.arange(8), (np.arange(8) + 3) % 10
    src, tgt = torch.from_numpy(data.canon[a]), torch.from_numpy(data.canon[b])
    au = torch.from_numpy(data.au[b])
    net, reg = LandmarkTransformerNet(hidden=64, layers=2), AURegressor(16)
    net.mean_shape.copy_(torch.from_numpy(data.canon.mean(0)))
    edges = torch.from_numpy(mesh_edges(data.canon.mean(0)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    # The AU regressor is untrained here: its term is left out of this fit.
    cfg = LmtTrainConfig(w_au=0.0)
    first = float(lmt_losses(net, reg, src, au, tgt, edges, cfg)["total"])
    for _ in range(150):
        terms = lmt_losses(net, reg, src, au, tgt, edges, cfg)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    assert float(terms["total"]) < first / 5


def test_mixer_overfits_a_few_pairs(tiny_cache):
    """A darkened face (a colour error inside the person) must be corrected: the fit that a conv
    net can make from what it sees. (The true background behind the other frame's person cannot
    be memorised by a net with no notion of position: that part of the loss stays.)"""
    torch.manual_seed(0)
    data = MixerData(tiny_cache, size=32)
    face, mask, back = data.batch(np.random.default_rng(0), 4)
    dark = face * 0.7
    net = BackgroundMixerNet(width=8, levels=2, size=32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    cfg = MixerTrainConfig(w_mask=0.0)

    def loss() -> torch.Tensor:
        rgb, m = net(dark, mask, back)
        return (composite(rgb, m, back) - face).abs().mean() + cfg.w_tv * (m[..., 1:] - m[..., :-1]).abs().mean()

    first = float(loss())
    for _ in range(150):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert float(value) < first / 5


def test_checkpoint_round_trip_restores_weights_and_moments(tmp_path):
    torch.manual_seed(0)
    net = LandmarkTransformerNet(hidden=16, layers=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 478, 3), torch.randn(2, 20)).pow(2).sum().backward()
    opt.step()
    save_checkpoint(tmp_path, 7, {"t": net}, {"t": opt})
    net2 = LandmarkTransformerNet(hidden=16, layers=1)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    meta = load_checkpoint(tmp_path, {"t": net2}, {"t": opt2})
    assert meta["step"] == 7
    for x, y in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[k]["exp_avg_sq"], s2[k]["exp_avg_sq"]) for k in s1)


def test_training_run_resumes_and_writes_checked_fp16_weights(tiny_cache, tmp_path):
    cfg = LmtTrainConfig(steps=4, au_steps=2, batch=8, hidden=32, layers=1, log_every=2, checkpoint_every=3)
    out = tmp_path / "run"
    with pytest.raises(ConfigError):
        train_landmark_transformer(tiny_cache, out, cfg)
        train_landmark_transformer(tiny_cache, out, cfg)  # a second run into the same folder
    path, regressor = train_landmark_transformer(tiny_cache, out, cfg, resume=True)
    assert regressor.name == "au_regressor.safetensors"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6 and "l1" in rows[-1]
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 6
    net = load_torch(TRANSFORMER, out)
    assert isinstance(net, LandmarkTransformerNet) and next(net.parameters()).dtype == torch.float32
    assert load_file(str(path))["head.weight"].dtype == torch.float16
    with pytest.raises(ConfigError):
        train_landmark_transformer(tiny_cache, out, LmtTrainConfig(steps=4, au_steps=2, hidden=64), resume=True)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="sha256"):
        load_torch(TRANSFORMER, out)
