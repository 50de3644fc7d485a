"""The live screen's recent portraits, kept across ``facepaint-live ui`` sessions.

A small JSON file in the user's state folder (``$XDG_STATE_HOME/facepaint-live/recent.json``, by
default ``~/.local/state/facepaint-live/``) lists the portraits the user started a run with: paths
they typed, and uploads, which are copied into ``portraits/`` beside it (a session's upload folder
is temporary) and removed from there once they fall off the list. A listed file that no longer
exists is never offered. An unreadable or malformed list is started afresh with a logged warning,
and a list that cannot be written stays in memory with a warning: neither stops the page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from pathlib import Path

RECENT = 8  # portraits the page offers again
_log = logging.getLogger(__name__)


def state_dir() -> Path:
    """``$XDG_STATE_HOME/facepaint-live`` (a relative or empty value is ignored, as the XDG
    specification says), else ``~/.local/state/facepaint-live``."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "facepaint-live"


class RecentPortraits:
    """The recent portraits, newest first.

    Args:
        folder: Where ``recent.json`` and the kept uploads live (None: this session only, nothing
            written; the page's tests use that).
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder.resolve() if folder is not None else None  # listed paths are resolved
        self._lock = threading.Lock()
        self._paths = self._load()

    def paths(self) -> list[str]:
        """The listed portraits whose files still exist."""
        with self._lock:
            return [p for p in self._paths if Path(p).is_file()]

    def add(self, path: str, uploads: Path) -> None:
        """Put the portrait ``path`` first (a file in ``uploads`` is kept by a copy) and save.

        A path that is not a file (the run that took it refused it) is not listed.
        """
        given = Path(path).resolve()
        if not given.is_file():
            return
        if self.folder is not None and given.is_relative_to(uploads.resolve()):
            try:
                given = self._keep(self.folder, given)
            except OSError as exc:
                _log.warning("recent portraits: cannot keep %s in %s (%s); listed while it lasts", given,
                             self.folder, exc)
        with self._lock:
            kept = [p for p in self._paths if p != str(given) and Path(p).is_file()]
            self._paths = [str(given), *kept][:RECENT]
            self._save()

    def _load(self) -> list[str]:
        if self.folder is None or not (self.folder / "recent.json").exists():
            return []
        file = self.folder / "recent.json"
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            listed = data.get("portraits") if isinstance(data, dict) else None
            if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
                raise ValueError('not {"portraits": [paths]}')
        except (OSError, ValueError) as exc:  # JSON and UTF-8 decoding errors are ValueErrors
            _log.warning("recent portraits: %s is unreadable (%s); starting an empty list", file, exc)
            return []
        return listed[:RECENT]

    @staticmethod
    def _keep(state: Path, upload: Path) -> Path:
        """A copy of ``upload`` in ``state/portraits/``, named by its content (one copy per image)."""
        folder = state / "portraits"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{hashlib.sha256(upload.read_bytes()).hexdigest()[:16]}{upload.suffix.lower()}"
        if not target.exists():
            shutil.copyfile(upload, target)
        return target

    def _save(self) -> None:
        """Write the list (atomically) and remove the kept uploads it no longer names."""
        if self.folder is None:
            return
        file = self.folder / "recent.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            part = file.with_suffix(".json.part")
            part.write_text(json.dumps({"portraits": self._paths}, indent=1), encoding="utf-8")
            os.replace(part, file)
            for kept in (self.folder / "portraits").glob("*"):
                if str(kept) not in self._paths:
                    kept.unlink(missing_ok=True)
        except OSError as exc:
            _log.warning("recent portraits: cannot write %s (%s); the list lasts this session only", file, exc)
