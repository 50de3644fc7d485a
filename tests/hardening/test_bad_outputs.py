"""Output paths that cannot or must not be written: one clean line, exit 2, nothing left behind.

Read-only folders are simulated without permissions (the suite may run as root, which ignores them):
a path under /proc, which refuses new files for everyone, and a regular file used as a folder. A full
disk is real: the temporary output file is a link to /dev/full (every write fails with ENOSPC), and
where the suite may mount file systems (root), a 256 KiB tmpfs is filled too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

FIXED = uuid.UUID("0123456789abcdef0123456789abcdef")


def _render(run_cli: Any, inputs: Any, out: Path, *extra: Any, driving: Path | None = None) -> Any:
    return run_cli("--source", inputs.portrait_file(), "--driving", driving or inputs.driving_clip(),
                   "--output", out, *extra)


@pytest.mark.parametrize("name,words", [
    ("missing/out.mp4", "does not exist; create it first"),
    ("out.avi", "unsupported extension '.avi'"),
    ("out.gif", "unsupported extension '.gif'"),
    ("out", "unsupported extension '(none)'"),
])
def test_bad_output_path(name: str, words: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / name
    check.user_error(_render(run_cli, inputs, out), out, words)


def test_output_under_a_file(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "out.mp4"
    check.user_error(_render(run_cli, inputs, out), out, "is a file, not a folder")


def test_output_is_a_folder(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "renders.mp4"
    out.mkdir()
    result = _render(run_cli, inputs, out)
    check.user_error(result, None, "is a folder")
    assert out.is_dir() and not list(out.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("suffix", [".mp4", ".png"])
def test_read_only_folder(suffix: str, inputs: Any, run_cli: Any, check: Any) -> None:
    out = Path("/proc") / f"facepaint-out{suffix}"
    driving = inputs.driving_clip() if suffix == ".mp4" else inputs.portrait_file()
    check.user_error(_render(run_cli, inputs, out, driving=driving), out, "cannot write /proc",
                     "check that the folder exists and is writable")


def test_same_path_as_an_input(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(inputs.driving_clip().read_bytes())
    before = clip.read_bytes()
    line = check.user_error(_render(run_cli, inputs, clip, "--overwrite", driving=clip), None,
                            "is the same file as --driving")
    assert "choose another output name" in line and clip.read_bytes() == before
    portrait = tmp_path / "me.png"
    portrait.write_bytes(inputs.portrait_file().read_bytes())
    result = run_cli("--source", portrait, "--driving", portrait, "--output", portrait)
    check.user_error(result, None, "is the same file as")


def test_existing_output_needs_overwrite(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"yesterday's render")
    result = _render(run_cli, inputs, out)
    assert result.code == 2 and len(result.lines) == 1, result.err
    assert "already exists; pass --overwrite" in result.lines[0]
    assert out.read_bytes() == b"yesterday's render"
    assert _render(run_cli, inputs, out, "--overwrite").code == 0
    check.video(out, 6)


def test_full_disk_through_dev_full(inputs: Any, run_cli: Any, check: Any, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(uuid, "uuid4", lambda: FIXED)
    partial = tmp_path / f".out.mp4.{FIXED.hex[:8]}.partial.mp4"
    partial.symlink_to("/dev/full")  # the sink's temporary file: every write fails with ENOSPC
    result = _render(run_cli, inputs, out)
    check.user_error(result, out, "No space left on device", "free some disk space")
    assert not partial.is_symlink()  # the temporary file was removed


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Path:
    """A 256 KiB tmpfs (root only; skipped where it cannot be mounted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("suffix", [".mp4", ".png"])
def test_full_disk_on_a_tiny_file_system(suffix: str, tiny_disk: Path, inputs: Any, run_cli: Any,
                                         check: Any) -> None:
    import numpy as np

    (tiny_disk / "filler").write_bytes(np.random.default_rng(0).bytes(240 * 1024))
    out = tiny_disk / f"out{suffix}"
    driving = inputs.driving_clip() if suffix == ".mp4" else inputs.portrait_file()
    line = check.user_error(_render(run_cli, inputs, out, driving=driving), out, "No space left on device")
    assert "free some disk space" in line
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("where,words", [("nowhere/s.json", "--stats-json folder"), (".", "is a folder")])
def test_bad_stats_json_path(where: str, words: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = _render(run_cli, inputs, out, "--stats-json", tmp_path / where)
    check.user_error(result, out, words)


def test_console_script_end_to_end(inputs: Any, tmp_path: Path) -> None:
    """The installed command, as a user runs it: one line, exit 2, no traceback, no file."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    script = Path(sys.executable).with_name("facepaint-live")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "facepaint.runtime.cli"]
    proc = subprocess.run([*command, "--source", str(inputs.portrait_file()), "--driving",
                           str(inputs.driving_clip()), "--output", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"facepaint-live: error: output {out} already exists; pass --overwrite to replace it or choose another name"]
    assert out.read_bytes() == b"keep me"
