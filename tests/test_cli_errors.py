"""Bad input to the offline command: exit code 2, one line on stderr, no traceback, no output file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepaint.runtime import session
from facepaint.runtime.cli import main
from fakes import NoFaceTracker


@pytest.fixture()
def files(tmp_path: Path, audio_only_file: Path, clip_writer) -> dict[str, Path]:
    portrait = tmp_path / "me.png"
    cv2.imwrite(str(portrait), np.full((40, 40, 3), 200, np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    corrupt = tmp_path / "talk.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    clip = clip_writer(tmp_path / "ok.mp4", [100] * 3, size=(32, 32), audio=None)
    return {"portrait": portrait, "text": text, "corrupt": corrupt, "clip": clip,
            "audio": audio_only_file, "out": tmp_path / "out.mp4"}


CASES = {
    # name: (source key or path, driving key, output, expected words)
    "missing source": ("missing.jpg", "clip", "out", "not found"),
    "non-image source": ("text", "clip", "out", "is not an image"),
    "source is a folder": (".", "clip", "out", "is not a file"),
    "no face in source": ("portrait", "clip", "out", "no face found in the source portrait"),
    "corrupt driving": ("portrait", "corrupt", "out", "cannot be read as a video"),
    "audio-only driving": ("portrait", "audio", "out", "has no video stream"),
    "missing driving": ("portrait", "nothing.mp4", "out", "not found"),
    "missing output folder": ("portrait", "clip", "nofolder/out.mp4", "does not exist"),
    "unknown output extension": ("portrait", "clip", "out.avi", "unsupported extension"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_code_2(case, files, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(session, "open_tracker", lambda config, live: NoFaceTracker())
    source, driving, output, words = CASES[case]
    src = files.get(source, tmp_path / source)
    drv = files.get(driving, tmp_path / driving)
    out = files["out"] if output == "out" else tmp_path / output
    code = main(["--source", str(src), "--driving", str(drv), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("facepaint-live: error: ") and words in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_unreadable_source(files, tmp_path, capsys, monkeypatch) -> None:
    locked = tmp_path / "locked.png"
    shutil.copy(files["portrait"], locked)
    locked.chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root reads any file: make the read fail instead
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(np, "fromfile", denied)
    code = main(["--source", str(locked), "--driving", str(files["clip"]), "--output", str(files["out"])])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be read (Permission denied)" in err and len(err.strip().splitlines()) == 1
    assert not files["out"].exists()


def test_console_script_prints_no_traceback(files) -> None:
    script = Path(sys.executable).with_name("facepaint-live")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "facepaint.runtime.cli"]
    proc = subprocess.run([*command, "--source", str(files["portrait"]), "--driving", str(files["corrupt"]),
                           "--output", str(files["out"])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("facepaint-live: error: driving video") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not files["out"].exists()
