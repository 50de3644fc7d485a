"""The training cache, the trainer's checkpoints and ``facepaint-live train`` on a real clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facepaint.engine.errors import ConfigError
from facepaint.engine.neural.generator import GeneratorConfig
from facepaint.engine.topology import MESH_LEFT_EYE, MESH_RIGHT_EYE
from facepaint.runtime.cli import main
from facepaint.runtime.training.cache import CacheSettings, build_cache, load_cache
from facepaint.runtime.training.data import make_batch
from facepaint.runtime.training.trainer import TrainConfig, Trainer

TINY = GeneratorConfig(width=8, blocks=1)
# No perceptual loss: its MobileNetV2 comes from a package installed by hand (--no-deps).
FAST = TrainConfig(batch=2, perceptual=0.0, gan=0.1, gan_start=1)


def test_cache_holds_aligned_crops_whose_landmarks_match_a_fresh_track(tiny_cache, image_tracker):
    manifest, clips = load_cache(tiny_cache)
    clip = clips[0]
    assert manifest["clips"][0]["frames"] == len(clip.crops) == 8
    assert clip.crops.shape == (8, 128, 128, 3) and clip.landmarks.shape == (8, 478, 3)
    assert clip.au.shape == (8, 20) and clip.blendshapes.shape == (8, 52)
    assert 0 < clip.landmarks[..., :2].min() and clip.landmarks[..., :2].max() < 128
    # The crops are face-aligned: both eyes sit near the same height in every crop.
    eyes = clip.landmarks[:, list(MESH_RIGHT_EYE) + list(MESH_LEFT_EYE), 1].mean(1)
    assert np.ptp(eyes) < 12
    # The stored landmarks are where the face is in the stored crop.
    fresh = image_tracker.track(np.ascontiguousarray(clip.crops[3]))
    assert fresh
    assert np.linalg.norm(fresh[0].landmarks[:, :2] - clip.landmarks[3, :, :2], axis=1).mean() < 3.0


def test_cache_is_reused_when_settings_match(tiny_clips, tiny_cache):
    stamp = {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.npz")}
    assert json.loads((tiny_cache / "manifest.json").read_text())["clips"][0]["source"] == "fomm_00.mp4"

    def no_tracker():
        raise AssertionError("a cached clip was tracked again")

    build_cache(tiny_clips, tiny_cache, CacheSettings(max_frames=8), no_tracker)
    assert stamp == {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.npz")}


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"g.{k}": v.clone() for k, v in trainer.gen.state_dict().items()}
    out.update({f"d.{k}": v.clone() for k, v in trainer.disc.state_dict().items()})
    for name, opt in (("og", trainer.opt_g), ("od", trainer.opt_d)):
        for i, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    return out


def test_checkpoint_round_trip_resumes_the_same_run(tiny_cache, tmp_path):
    _, clips = load_cache(tiny_cache)
    a = Trainer(clips, tmp_path / "run", FAST, TINY)
    a.write_config()
    a.train_step()
    a.train_step()
    a.save()
    b = Trainer(clips, tmp_path / "run", FAST, TINY)
    assert b.resume() and b.step == 2
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # Same data order and same updates after the resume.
    assert a.train_step() == b.train_step()
    assert all(torch.equal(x, y) for x, y in zip(a.gen.parameters(), b.gen.parameters(), strict=True))
    other = Trainer(clips, tmp_path / "run", TrainConfig(batch=2, perceptual=0.0, gan=0.0), TINY)
    with pytest.raises(ConfigError, match="other settings"):
        other.resume()


@pytest.mark.slow
def test_overfitting_eight_frames_lowers_the_loss_5x(tiny_cache, tmp_path):
    _, clips = load_cache(tiny_cache)
    torch.manual_seed(0)
    # The training objective without its pretrained and adversarial terms (L1 + segmentation), at
    # 16 px so that 1000 steps take about a minute. The generator starts at the warp, already
    # close to the truth, so its L1 term falls slowly; 5x is reached at about 700 steps.
    trainer = Trainer(clips, tmp_path, TrainConfig(batch=8, lr=1e-3, perceptual=0.0, gan=0.0),
                      GeneratorConfig(size=16, width=32, levels=2, blocks=1))
    full = make_batch([(clips[0], i, (i + 4) % 8) for i in range(8)])
    batch = _downsample(full, 16)
    losses = [trainer.train_step(batch)["total"] for _ in range(1000)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 5


def _downsample(batch, size):
    import torch.nn.functional as F

    from facepaint.runtime.training.data import Batch

    def area(a):
        return F.interpolate(torch.from_numpy(a), size=size, mode="area").numpy()

    seg = batch.seg[:, :: batch.seg.shape[1] // size, :: batch.seg.shape[2] // size]
    return Batch(area(batch.inputs), area(batch.target), np.ascontiguousarray(seg), area(batch.weight))


def test_weights_of_a_tiny_run_render_through_the_cli(tiny_cache, tmp_path, portrait, talking_clip, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_cache), "--out", str(run), "--steps", "2", "--batch", "2",
            "--perceptual", "0", "--gan", "0", "--width", "8", "--blocks", "1", "--save-every", "2"]
    assert main(args) == 0
    assert (run / "weights" / "face_generator.safetensors").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 1
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    out = tmp_path / "out.mp4"
    assert main(["--source", str(portrait), "--driving", str(talking_clip), "--output", str(out), "--reenactor",
                 "neural", "--weights", str(run), "--duration", "0.2", "--quiet"]) == 0
    import av

    with av.open(str(out)) as f:
        assert sum(1 for _ in f.decode(video=0)) >= 5


def test_missing_weights_are_one_line_errors(tmp_path, portrait, talking_clip, capsys):
    out = tmp_path / "out.mp4"
    code = main(["--source", str(portrait), "--driving", str(talking_clip), "--output", str(out),
                 "--reenactor", "neural", "--weights", str(tmp_path), "--duration", "0.2"])
    err = capsys.readouterr().err
    assert code == 2 and "face_generator.safetensors" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
