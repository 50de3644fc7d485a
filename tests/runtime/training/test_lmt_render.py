"""Weights from a tiny training run of both stages render through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from facepaint.runtime.cli import main
from facepaint.runtime.training.lmt_cache import ClipCacheConfig
from facepaint.runtime.training.lmt_entry import train_transformer_and_mixer


@pytest.mark.slow
def test_tiny_run_weights_render_through_the_cli(media: Path, portrait: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "lp_d10.mp4").symlink_to(media / "driving" / "lp_d10.mp4")
    out = tmp_path / "weights"
    paths = train_transformer_and_mixer(clips, out, steps=3, cache_config=ClipCacheConfig(max_frames=8, crops=4))
    assert [p.name for p in paths] == ["landmark_transformer.safetensors", "au_regressor.safetensors",
                                       "background_mixer.safetensors"]
    assert all(p.parent == out / "weights" for p in paths)
    assert json.loads((out / "weights" / "landmark_transformer.json").read_text())["training"]["clips"] == ["lp_d10"]
    cap = cv2.VideoCapture(str(media / "driving" / "lp_d10.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, frame = cap.read()
    cap.release()
    assert ok
    driving, result = tmp_path / "open.png", tmp_path / "out.png"
    cv2.imwrite(str(driving), frame)
    code = main(["--source", str(portrait), "--driving", str(driving), "--output", str(result), "--quiet",
                 "--transformer", "neural", "--mixer", "neural", "--weights", str(out)])
    assert code == 0
    assert cv2.imread(str(result)).shape == cv2.imread(str(portrait)).shape
