"""The quality screen: ``facepaint-live eval``'s ``evaluate`` on a render, its figures beside the
two bounds (a frozen source, the pasted driving face) as the command prints them."""

from __future__ import annotations

import threading
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError


class QualityJob:
    """One evaluation at a time; ``status()`` gives its progress line and, when done, the table."""

    def __init__(self) -> None:
        self.state = "idle"  # idle, running, done, failed
        self.message = ""
        self.error = ""
        self.lines: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self, source: str, driving: str, output: str | None, max_frames: int | None, every: int = 5) -> None:
        """Score ``output`` (None: render one) of ``source`` driven by ``driving`` on a thread.

        Raises:
            FacepaintError: An evaluation is running, or the settings are refused (eval's message).
        """
        from facepaint.runtime.evaluation.quality import EvalConfig

        if self._thread is not None and self._thread.is_alive():
            raise ConfigError("an evaluation is running; wait for it to finish")
        try:
            config = EvalConfig(driving=driving, source=source or None, output=output, every=every,
                                max_frames=max_frames, self_reenactment=not source)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.state, self.message, self.error, self.lines = "running", "", "", []
        self._thread = threading.Thread(target=self._run, args=(config,), name="ui-quality", daemon=True)
        self._thread.start()

    def _run(self, config: Any) -> None:
        from facepaint.runtime.evaluation.quality import evaluate, summary_lines

        try:
            self.lines = summary_lines(evaluate(config, progress=self._say))
            self.state = "done"
        except FacepaintError as exc:
            self.state, self.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: one line on the page, the server keeps serving
            self.state, self.error = "failed", f"unexpected {type(exc).__name__}: {exc}"

    def _say(self, message: str) -> None:
        self.message = message

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "error": self.error, "lines": self.lines}
