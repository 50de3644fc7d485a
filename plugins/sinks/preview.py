"""Preview window: the output with a HUD (fps, latency, drops, face) and the live hotkeys.

GUI toolkits (Qt here, Cocoa on macOS) only work on the thread that created the window, so this
sink is split in two: ``write`` may be called from the output thread and only stores the newest
frame; ``pump`` shows it and reads the keyboard and must run on the thread that built the sink (the
main thread in ``run_live``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from facepaint.engine.errors import SinkError
from facepaint.plugins.base import Frame

# Hotkeys: what each key asks the live loop to do.
KEYS: dict[int, str] = {
    ord("c"): "recalibrate",
    ord("p"): "passthrough",
    ord(" "): "pause",
    ord("q"): "quit",
    27: "quit",  # Esc
    ord("e"): "expression_next",
    ord("E"): "expression_prev",
    ord("+"): "strength_up",
    ord("="): "strength_up",  # + without shift on most layouts
    ord("-"): "strength_down",
    ord("0"): "expression_off",
}
HELP = ("c recalibrate  p passthrough  space pause  q quit",
        "e/E next/previous expression  +/- strength  0 expression off")


@dataclass(frozen=True)
class HudInfo:
    """What the HUD shows.

    Attributes:
        fps: Delivered frames per second (recent).
        latency_ms: Capture to output latency of recent frames (p50), in milliseconds.
        dropped: Frames dropped so far, all stages together.
        face: Whether the driving face is tracked in the newest frame.
        passthrough: Whether the real camera is shown instead of the portrait.
        paused: Whether the output is frozen.
        expression: The expression edit applied (``describe_expression``), empty for none.
        reference: The live reference's state, empty when not ``auto``.
        degraded: What the run gave up to keep the camera's rate (``live_degrade``), empty for nothing.
    """

    fps: float = 0.0
    latency_ms: float = 0.0
    dropped: int = 0
    face: bool = False
    passthrough: bool = False
    paused: bool = False
    expression: str = ""
    reference: str = ""
    degraded: str = ""

    def lines(self) -> list[str]:
        """The HUD as text lines, top to bottom."""
        state = "face" if self.face else "NO FACE"
        modes = " ".join(m for m, on in (("PASSTHROUGH", self.passthrough), ("PAUSED", self.paused)) if on)
        first = f"{self.fps:4.1f} fps  {self.latency_ms:3.0f} ms  drops {self.dropped}  {state}"
        lines = [first, modes] if modes else [first]
        if self.expression and self.expression != "none":
            lines.append(f"expression: {self.expression}")
        if self.reference:
            lines.append(f"reference: {self.reference}")
        if self.degraded:
            lines.append(f"behind the camera: {self.degraded}")
        return lines


def draw_hud(image: np.ndarray, info: HudInfo) -> np.ndarray:
    """Write ``info`` on a copy of ``image`` (any channel order; the text is white on a dark band)."""
    import cv2

    out = image.copy()
    lines = info.lines() + list(HELP)
    # Text about 1/30 of the frame height (24 px in 720p), never under 14 px: the preview window
    # is often shown smaller than the frame, and the old 1/50 became unreadable there.
    scale = max(0.55, out.shape[0] / 900)
    thick = max(1, round(2 * scale))
    step = int(34 * scale)
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines) + 16
    band = out[:step * len(lines) + step // 3, :min(width, out.shape[1])]
    band[...] = (band * 0.35).astype(out.dtype)  # darkened, not blacked out: the face stays visible
    for row, text in enumerate(lines):
        org = (8, step * (row + 1) - step // 4)
        colour = (255, 255, 255) if row or info.face else (255, 80, 80)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return out


def display_available(platform: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """False where a window cannot be shown: Linux/BSD without an X11 or Wayland display."""
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform.startswith(("win", "darwin")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


class PreviewSink:
    """An OpenCV window showing the newest output frame, with a HUD and hotkeys.

    Attributes:
        title: The window title.
        shown: Frames put on screen.
    """

    def __init__(self, title: str = "facepaint-live") -> None:
        """Create the window on the calling thread.

        Args:
            title: Window title.

        Raises:
            SinkError: When there is no display to show a window on.
        """
        if not display_available():
            raise SinkError(
                "no display for the preview window (DISPLAY and WAYLAND_DISPLAY are not set); "
                "run without --preview, or inside a desktop session (or under xvfb-run)"
            )
        import cv2

        self.title = title
        self.shown = 0
        self._lock = threading.Lock()
        self._latest: np.ndarray | None = None
        self._closed = False
        self._owner = threading.get_ident()
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise SinkError(f"cannot open the preview window: {exc}; run without --preview") from None
        self._opened = False

    def write(self, frame: Frame) -> None:
        """Keep ``frame`` as the one to show next (safe from any thread)."""
        with self._lock:
            self._latest = frame.image

    def pump(self, info: HudInfo | None = None, wait_ms: int = 1) -> str | None:
        """Show the newest frame and read the keyboard; call on the thread that made the window.

        Args:
            info: What the HUD shows (None: no HUD).
            wait_ms: How long to wait for a key, in milliseconds (>= 1: the GUI needs the time).

        Returns:
            The hotkey's action (``recalibrate``, ``passthrough``, ``pause``, ``quit``), ``quit`` when
            the window was closed, else None.

        Raises:
            SinkError: When called from another thread than the one that created the window.
        """
        if self._closed:
            return "quit"
        if threading.get_ident() != self._owner:
            raise SinkError("PreviewSink.pump must run on the thread that created the window")
        import cv2

        # Checked before imshow, which would quietly open a new window in place of the closed one.
        if self._opened and not self._visible():
            return "quit"
        with self._lock:
            image, self._latest = self._latest, None
        if image is not None:
            shown = draw_hud(image, info) if info is not None else image
            cv2.imshow(self.title, cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
            self.shown += 1
            self._opened = True
        key = cv2.waitKey(max(1, wait_ms)) & 0xFF
        return KEYS.get(key)

    def _visible(self) -> bool:
        import cv2

        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt raises for a window that no longer exists
            return False

    def close(self) -> None:
        """Destroy the window; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        import cv2

        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # lets the GUI process the destroy event
        except cv2.error:
            pass  # the user already closed it

    def abort(self) -> None:
        """Same as ``close()``."""
        self.close()

    def __enter__(self) -> PreviewSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
