"""Expression control in the CLI: the still edits (no driving needed) and the live hotkeys.

    facepaint-live --source me.jpg --expression happy --output happy.png
    facepaint-live --source me.jpg --au AU12=0.8,AU4=-0.3 --pose yaw=10 --output x.png
    facepaint-live --source me.jpg --expressions all --output sheet.png
    facepaint-live --source me.jpg --driving talk.mp4 --regions mouth --output lipsync.mp4

This module is CLI layer: the summary line goes to stderr from here.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facepaint.engine.errors import ConfigError
from facepaint.engine.expression import EXPRESSIONS, POSE_AXES, STRENGTH_RANGE, ExpressionConfig
from facepaint.engine.reenactment import Measure

SHEET_TILE = 360  # contact-sheet tile height in pixels: faces large enough to judge an expression


def label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` scaled to ``SHEET_TILE`` pixels high with ``text`` written under it."""
    h, w = image.shape[:2]
    tile = cv2.resize(image, (max(1, round(w * SHEET_TILE / h)), SHEET_TILE), interpolation=cv2.INTER_AREA)
    band = np.full((34, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    return np.concatenate([tile, band])


def contact_sheet(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Labelled tiles (same height) in rows of ``columns``, white between them."""
    width = max(t.shape[1] for t in tiles)
    padded = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    padded += [np.full_like(padded[0], 255)] * (-len(padded) % columns)
    rows = [np.concatenate(padded[i:i + columns], axis=1) for i in range(0, len(padded), columns)]
    return np.concatenate(rows)


def render_sheet(engine: Any, measure: Measure, base: ExpressionConfig, names: Sequence[str],
                 strengths: Sequence[float] = (1.0,), columns: int = 5) -> np.ndarray:
    """The source, then the source with each expression at each strength (each edit checked with
    ``measure``), as one labelled sheet; each tile is the face's part of the portrait, the only
    part an edit changes."""
    source = engine.source.image
    x0, y0, x1, y1 = engine.source.box
    tiles = [label(source[y0:y1, x0:x1], "source")]
    for name in names:
        for strength in strengths:
            engine.set_expression(dataclasses.replace(base, expression=name, strength=strength), measure)
            text = name if strength == 1.0 else f"{name} {strength:g}"
            tiles.append(label(engine.still()[y0:y1, x0:x1], text))
    engine.set_expression(base)
    return contact_sheet(tiles, columns=min(len(tiles), columns))


def run_still(config: Any) -> int:
    """``--expression`` / ``--au`` / ``--pose`` / ``--expressions`` on the portrait alone.

    Raises:
        ConfigError: When ``--output`` is not an image.
        FacepaintError: No face in the source, a basis that cannot be loaded, an unwritable output.
    """
    from facepaint.plugins.base import Frame, load_plugin
    from facepaint.plugins.media import WRITE_IMAGES
    from facepaint.plugins.sinks.file import output_kind
    from facepaint.runtime.portrait import read_portrait
    from facepaint.runtime.session import Session, measure_with

    if output_kind(str(config.output)) != "image":
        raise ConfigError(f"--output {config.output}: an edited still is an image; "
                          f"use one of {', '.join(WRITE_IMAGES)}")
    image = read_portrait(config)
    with Session(config, live=False, image=image) as session:  # its engine checked the edit when built
        if config.expressions:
            out = render_sheet(session.engine, measure_with(session.tracker), config.engine.expression,
                               config.expressions)
        else:
            out = session.engine.still()
    with load_plugin("facepaint.sinks", "file")(config.output, size=(out.shape[1], out.shape[0])) as sink:
        sink.write(Frame(image=out, index=0, pts=0.0, captured_at=0.0))
    print(f"facepaint-live: wrote {config.output}: {describe(config)} ({out.shape[1]}x{out.shape[0]})",
          file=sys.stderr)
    return 0


def describe(config: Any) -> str:
    """What the still edit applied, for the summary line and the HUD."""
    what = (f"contact sheet of {', '.join(config.expressions)}" if config.expressions
            else describe_expression(config.engine.expression))
    if not config.background:
        return what
    return f"background {config.background}" if what == "none" else f"{what}, background {config.background}"


def describe_expression(e: ExpressionConfig) -> str:
    """``happy 1.0, AU12=0.8, yaw 10``: an edit in a few words (``none`` when inactive)."""
    parts = [f"{e.expression} {e.strength:g}"] if e.expression else []
    parts += [f"{n}={'+' if add and v >= 0 else ''}{v:g}" for n, v, add in e.au]
    parts += [f"{axis} {a:g}" for axis, a in zip(POSE_AXES, e.pose, strict=True) if a]
    return ", ".join(parts) or "none"


STRENGTH_STEP = 0.1


class ExpressionStepper:
    """The live expression hotkeys: step through ``EXPRESSIONS``, nudge the strength, turn it off.

    ``apply`` runs on the preview's (main) thread, ``take`` on the render thread; the newest
    change wins.

    Args:
        config: The edit the run started with (``--expression`` ...).
    """

    ACTIONS = ("expression_next", "expression_prev", "strength_up", "strength_down", "expression_off")

    def __init__(self, config: ExpressionConfig | None = None) -> None:
        self.config = config or ExpressionConfig()
        self._pending: ExpressionConfig | None = None

    def apply(self, action: str | None) -> bool:
        """Apply a hotkey action; False when ``action`` is not an expression one."""
        if action not in self.ACTIONS:
            return False
        c = self.config
        if action in ("expression_next", "expression_prev"):
            order = (None, *EXPRESSIONS)
            move = 1 if action == "expression_next" else -1
            name = order[(order.index(c.expression) + move) % len(order)]
            c = dataclasses.replace(c, expression=name)
        elif action == "expression_off":
            c = dataclasses.replace(c, expression=None, au=(), pose=(0.0, 0.0, 0.0))
        else:
            step = STRENGTH_STEP if action == "strength_up" else -STRENGTH_STEP
            lo, hi = STRENGTH_RANGE
            c = dataclasses.replace(c, strength=round(min(hi, max(lo, c.strength + step)), 2))
        self.config = self._pending = c
        return True

    def set(self, config: ExpressionConfig) -> None:
        """Use ``config`` from the next frame on (the page's sliders; the newest change wins)."""
        self.config = self._pending = config

    def take(self) -> ExpressionConfig | None:
        """The edit to apply now, once per change (None: unchanged)."""
        pending, self._pending = self._pending, None
        return pending

    def describe(self) -> str:
        """For the HUD."""
        return describe_expression(self.config)
