"""The live screen's recent portraits outlive the server: a JSON list in the user's state folder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from facepaint.runtime.ui.files import Files
from facepaint.runtime.ui.recent import RECENT, RecentPortraits, state_dir


def _session(tmp_path: Path, name: str, state: Path) -> Files:
    return Files(tmp_path / name, RecentPortraits(state))


def test_typed_paths_and_uploads_outlive_the_session(tmp_path, media, portrait):
    state = tmp_path / "state"
    first = _session(tmp_path, "one", state)
    upload = first.save_upload("me.png", _png(media / "portraits" / "biden2.jpg"))
    first.remember_portrait(str(portrait))
    first.remember_portrait(str(upload))
    first.remember_portrait(str(portrait))  # again: moves to the front, listed once
    shutil.rmtree(tmp_path / "one")  # the session's temporary upload folder goes with it

    second = _session(tmp_path, "two", state)
    listed = second.recent
    assert listed[0] == str(portrait.resolve()) and len(listed) == 2
    kept = Path(listed[1])
    assert kept.parent == (state / "portraits").resolve() and kept.suffix == ".png"
    assert kept.read_bytes() == _png(media / "portraits" / "biden2.jpg")
    assert json.loads((state / "recent.json").read_text())["portraits"] == listed


def test_gone_files_are_never_listed_and_dropped_uploads_are_removed(tmp_path, media):
    state = tmp_path / "state"
    files = _session(tmp_path, "one", state)
    upload = files.save_upload("a.png", _png(media / "portraits" / "lp_s10.jpg"))
    files.remember_portrait(str(upload))
    kept = Path(files.recent[0])
    copies = []
    for k in range(RECENT + 1):  # typed portraits push the kept upload off the list
        copy = tmp_path / f"p{k}.jpg"
        shutil.copyfile(media / "portraits" / "obama.jpg", copy)
        copies.append(copy)
        files.remember_portrait(str(copy))
    assert len(files.recent) == RECENT and not kept.exists()
    copies[-1].unlink()
    assert str(copies[-1].resolve()) not in _session(tmp_path, "two", state).recent
    files.remember_portrait(str(tmp_path / "missing.jpg"))  # refused by the run: not listed
    assert str(tmp_path / "missing.jpg") not in files.recent


def test_a_corrupt_list_starts_empty_with_a_warning(tmp_path, portrait, caplog):
    state = tmp_path / "state"
    state.mkdir()
    for text in ("{not json", '{"portraits": [1, 2]}', "\xff\xfe"):
        (state / "recent.json").write_bytes(text.encode("latin-1"))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="facepaint.runtime.ui.recent"):
            files = _session(tmp_path, "one", state)
        assert files.recent == [] and "unreadable" in caplog.text and "recent.json" in caplog.text
    files.remember_portrait(str(portrait))  # and the next run writes a good one
    assert _session(tmp_path, "two", state).recent == [str(portrait.resolve())]


def test_the_state_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "facepaint-live"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert state_dir() == Path.home() / ".local" / "state" / "facepaint-live"


def _png(path: Path) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", cv2.imread(str(path)))
    assert ok
    return data.tobytes()
