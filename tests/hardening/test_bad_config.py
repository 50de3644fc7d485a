"""Bad --config files, bad flag values and cameras that do not exist: one clean line, exit 2."""

from __future__ import annotations

import glob
import math
from pathlib import Path
from typing import Any

import pytest


def _render(run_cli: Any, inputs: Any, out: Path, *extra: Any) -> Any:
    return run_cli("--source", inputs.portrait_file(), "--driving", inputs.driving_clip(), "--output", out, *extra)


def _toml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "settings.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


CONFIG_CASES = {
    # name: (file content, words of the error)
    "malformed toml": ("[tracker\nsmoothing = true\n", "is not valid TOML"),
    "unclosed string": ('output = "out.mp4\n', "is not valid TOML"),
    "not utf-8": (b'output = "\xff\xfe.mp4"\n', "is not UTF-8 text"),
    "unknown key": ("smothing = false\n", "unknown config key 'smothing'"),
    "unknown nested key": ("[tracker]\nsmothing = false\n", "did you mean 'tracker.smoothing'"),
    "unknown section": ("[trackr]\nname = 'mediapipe'\n", "did you mean 'tracker'"),
    "crf as a word": ("[encoder]\ncrf = 'high'\n", "encoder"),
    "crf out of range": ("[encoder]\ncrf = 99\n", "encoder.crf must be in 0..51"),
    "negative duration": ("duration = -5.0\n", "--duration must be"),
    "nan duration": ("duration = nan\n", "--duration must be"),
    "tiny camera size": ("[virtual_camera]\nsize = [0, 0]\n", "virtual_camera.size"),
    "confidence above one": ("[tracker]\nmin_confidence = 2.0\n", "min_confidence"),
    "face_index as a string": ('face_index = "1"\n', "face"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_file(case: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    text, words = CONFIG_CASES[case]
    out = tmp_path / "out.mp4"
    check.user_error(_render(run_cli, inputs, out, "--config", _toml(tmp_path, text)), out, words)


TYPED_CASES = {
    "smoothing as a string": "[tracker]\nsmoothing = \"false\"\n",
    "a section given a number": "tracker = 5\n",
    "loop as a number": "loop = 1.5\n",
    "crf as a float": "[encoder]\ncrf = 18.5\n",
    "size as a string": "[virtual_camera]\nsize = \"1280x720\"\n",
}


@pytest.mark.parametrize("case", list(TYPED_CASES))
def test_config_value_of_the_wrong_type(case: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    line = check.user_error(_render(run_cli, inputs, out, "--config", _toml(tmp_path, TYPED_CASES[case])), out)
    assert "must be" in line


@pytest.mark.parametrize("what,words", [("missing", "config file not found"), ("folder", "is a folder")])
def test_config_path_is_not_a_file(what: str, words: str, inputs: Any, run_cli: Any, check: Any,
                                   tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    if what == "folder":
        path.mkdir()
    out = tmp_path / "out.mp4"
    check.user_error(_render(run_cli, inputs, out, "--config", path), out, words)


FLAG_CASES = {
    # name: (extra flags, words of the error)
    "--size 0x0": (["--size", "0x0"], "virtual_camera.size must be"),
    "--size abc": (["--size", "abc"], "--size must look like 1280x720"),
    "--size 1280x": (["--size", "1280x"], "--size must look like 1280x720"),
    "--size 1x2x3": (["--size", "1x2x3"], "--size must look like 1280x720"),
    "--crf 99": (["--crf", "99"], "encoder.crf must be in 0..51"),
    "--crf -1": (["--crf", "-1"], "encoder.crf must be in 0..51"),
    "--crf high": (["--crf", "high"], "invalid int value"),
    "--duration -1": (["--duration", "-1"], "--duration must be"),
    "--duration 0": (["--duration", "0"], "--duration must be"),
    "--duration nan": (["--duration", "nan"], "--duration must be"),
    "--duration inf": (["--duration", "inf"], "--duration must be"),
    "--face-index abc": (["--face-index", "abc"], "invalid int value"),
    "--tracker unknown": (["--tracker", "dlib"], "invalid choice: 'dlib'"),
    "--reference unknown": (["--reference", "middle"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_bad_flag_value(case: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    flags, words = FLAG_CASES[case]
    out = tmp_path / "out.mp4"
    check.user_error(_render(run_cli, inputs, out, *flags), out, words)


@pytest.mark.parametrize("argv,words", [
    (["--source", "me.jpg"], "give exactly one of --driving (render a file) and --cam (live)"),
    (["--source", "me.jpg", "--driving", "a.mp4", "--cam", "0"], "not allowed with argument"),
    (["--driving", "a.mp4", "--output", "o.mp4"], "the following arguments are required: --source"),
])
def test_bad_flag_combination(argv: list[str], words: str, run_cli: Any, check: Any) -> None:
    check.user_error(run_cli(*argv), None, words)


def test_driving_without_output(inputs: Any, run_cli: Any, check: Any) -> None:
    result = run_cli("--source", inputs.portrait_file(), "--driving", inputs.driving_clip())
    check.user_error(result, None, "--driving needs --output FILE")


@pytest.mark.parametrize("cam,words", [
    ("7", "cannot open camera 7"),
    ("/dev/video99", "cannot open camera '/dev/video99'"),
    ("-1", "--cam index must be >= 0"),
    ("talk.mp4", "a video file of that name was not found"),
    ("text.mp4", "cannot be read as a video"),
])
def test_camera_that_does_not_exist(cam: str, words: str, inputs: Any, run_cli: Any, check: Any,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.mp4").write_text("not a video\n")
    result = run_cli("--source", inputs.portrait_file(), "--cam", cam, "--no-vcam")
    check.user_error(result, None, words)


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="needs a machine without video devices")
def test_virtual_camera_device_that_does_not_exist(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--cam", inputs.driving_clip(), "--vcam-device",
                     "/dev/video99", "--output", out)
    check.user_error(result, out, "/dev/video99")


def test_duration_is_finite() -> None:
    from facepaint.runtime.config import AppConfig

    for bad in (math.nan, math.inf, -1.0, 0.0):
        with pytest.raises(ValueError, match="--duration"):
            AppConfig(source="s.jpg", driving="d.mp4", output="o.mp4", duration=bad)
