"""The render screen's job: one file render (or still edit) at a time, through the CLI's own
``render_file`` / ``run_still``, with its progress for the page."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError
from facepaint.plugins.sinks.file import output_kind
from facepaint.runtime.config import AppConfig, build_app_config
from facepaint.runtime.ui import controls
from facepaint.runtime.ui.files import IMAGE_SUFFIXES, Files


class Progress:
    """``update(1)`` per written frame (what ``render_file`` calls)."""

    def __init__(self) -> None:
        self.frames = 0

    def update(self, n: int) -> None:
        self.frames += n


class RenderJob:
    """Render the page's settings into a new file of ``files``; one job runs at a time.

    Args:
        files: Where the result goes and how the page gets it.
        base: Config layers under the page's settings.
    """

    def __init__(self, files: Files, base: list[dict[str, Any]] | None = None) -> None:
        self.files, self.base = files, base or []
        self.progress = Progress()
        self.total: int | None = None
        self.state = "idle"  # idle, running, done, failed
        self.error = ""
        self.result: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def build(self, values: dict[str, Any]) -> AppConfig:
        """The render config: a video for a driving video, otherwise an image.

        Raises:
            FacepaintError: The CLI's one-line message.
        """
        driving = str(values.get("--driving") or "")
        suffix = ".mp4" if driving and Path(driving).suffix.lower() not in IMAGE_SUFFIXES else ".png"
        output = self.files.new_path(suffix)
        live = {k: v for k, v in values.items() if k not in ("--cam", "--output")}
        _, layer = controls.parse({**live, "--output": str(output), "--quiet": True})
        try:
            return build_app_config(*self.base, layer)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None

    def start(self, values: dict[str, Any]) -> None:
        """Check ``values`` and start rendering on a thread.

        Raises:
            FacepaintError: A render is running, or the settings are refused.
        """
        if self._thread is not None and self._thread.is_alive():
            raise ConfigError("a render is running; wait for it to finish")
        config = self.build(values)
        if not config.driving and not config.still:
            raise ConfigError("choose a driving video or image, or an expression to apply to the still")
        self.total = _frame_count(str(config.driving)) if config.driving and not config.still else 1
        self.progress, self.state, self.error, self.result = Progress(), "running", "", {}
        self._thread = threading.Thread(target=self._run, args=(config,), name="ui-render", daemon=True)
        self._thread.start()

    def _run(self, config: AppConfig) -> None:
        try:
            if config.still:
                from facepaint.runtime.expression import run_still

                run_still(config)
            else:
                from facepaint.runtime.offline import render_file

                render_file(config, progress=self.progress)
            path = Path(str(config.output))
            self.result = {"file": self.files.serve(path), "kind": output_kind(str(path)), "name": path.name}
            self.state = "done"
        except FacepaintError as exc:
            self.error, self.state = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - a bug: one line on the page, the server keeps serving
            self.error, self.state = f"unexpected {type(exc).__name__}: {exc}", "failed"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "frames": self.progress.frames, "total": self.total, "error": self.error,
                **self.result}


def _frame_count(driving: str) -> int | None:
    """The driving file's frame count, for the progress bar (None: unknown, or a still).

    Raises:
        FacepaintError: The driving file cannot be opened (the render's own message).
    """
    from facepaint.runtime.offline import open_driving

    source = open_driving(driving)
    try:
        return source.frame_count
    finally:
        source.close()

