"""Expression control in the CLI: its flags, their parsing, and the still edits (no driving needed).

    facepaint-live --source me.jpg --expression happy --output happy.png
    facepaint-live --source me.jpg --au AU12=0.8,AU4=-0.3 --pose yaw=10 --output x.png
    facepaint-live --source me.jpg --expressions all --output sheet.png
    facepaint-live --source me.jpg --driving talk.mp4 --regions mouth --output lipsync.mp4

This module is CLI layer: the summary line goes to stderr from here.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facepaint.engine.errors import ConfigError
from facepaint.engine.expression import (
    EXPRESSIONS,
    POSE_AXES,
    STRENGTH_RANGE,
    ExpressionConfig,
    blendshape_offset,
    refined_channels,
)
from facepaint.engine.regions import REGIONS

# Re-track-and-correct rounds of an edit, and the largest correction (blendshape units): the
# linear basis undershoots on faces far from its training data (Biden's neutral: smile 0.97 ->
# 0.48 uncorrected); two rounds bring the tracker's reading to the request where the basis can.
REFINE_STEPS = 2
REFINE_LIMIT = 0.4
SHEET_TILE = 360  # contact-sheet tile height in pixels: faces large enough to judge an expression


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The expression flags of the main command."""
    g = p.add_argument_group("expression control")
    g.add_argument("--expression", help=f"apply an expression: {', '.join(EXPRESSIONS)} (neutral removes the "
                   "source's own); on a still without --driving/--cam, or as an offset to the driving motion")
    g.add_argument("--strength", type=float, help="how far toward the expression, 0..1.5 (default 1)")
    g.add_argument("--au", help="AU edits, e.g. AU12=0.8,AU4=-0.3: a signed value adds, an unsigned one sets")
    g.add_argument("--pose", help="head pose offset in degrees, e.g. yaw=10,pitch=-5,roll=0")
    g.add_argument("--expressions", help="contact sheet of the source and these expressions ('all' or a "
                   "comma list) into --output IMAGE")
    g.add_argument("--regions", help=f"parts of the driving motion to transfer, comma list of {','.join(REGIONS)}")
    g.add_argument("--expression-scale", type=float, help="gain on the driving expression, 0..2 (default 1)")
    g.add_argument("--pose-scale", type=float, help="gain on the driving head motion, 0..2 (default 1)")
    g.add_argument("--background", help="put the person over IMAGE, a colour (#00ff00, green) or blur")


def args_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The config layer of the expression flags (only what was given).

    Raises:
        ConfigError: On a malformed ``--au``, ``--pose``, ``--regions`` or ``--expressions``.
    """
    expression: dict[str, Any] = {}
    if args.expression is not None:
        expression["expression"] = args.expression
    if args.strength is not None:
        expression["strength"] = args.strength
    if args.au:
        expression["au"] = parse_au(args.au)
    if args.pose:
        expression["pose"] = parse_pose(args.pose)
    transformer: dict[str, Any] = {}
    if args.regions:
        transformer["regions"] = parse_regions(args.regions)
    if args.expression_scale is not None:
        transformer["expression"] = args.expression_scale
    if args.pose_scale is not None:
        transformer["rotation"] = transformer["translation"] = args.pose_scale
    engine = {k: v for k, v in (("expression", expression), ("transformer", transformer)) if v}
    layer: dict[str, Any] = {"engine": engine} if engine else {}
    if args.expressions:
        layer["expressions"] = parse_expressions(args.expressions)
    if args.background:
        layer["background"] = args.background
    return layer


def _pairs(text: str, flag: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{flag} wants NAME=VALUE pairs such as {example}, got '{item}'")
        pairs.append((name.strip(), value.strip()))
    if not pairs:
        raise ConfigError(f"{flag} wants NAME=VALUE pairs such as {example}, got '{text}'")
    return pairs


def _number(flag: str, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{flag} {name}: '{value}' is not a number") from None


def parse_au(text: str) -> tuple[tuple[str, float, bool], ...]:
    """``AU12=0.8,AU4=-0.3`` -> ``(("AU12", 0.8, False), ("AU4", -0.3, True))``: signed adds."""
    return tuple((name, _number("--au", name, value), value[0] in "+-")
                 for name, value in _pairs(text, "--au", "AU12=0.8,AU4=-0.3"))


def parse_pose(text: str) -> tuple[float, float, float]:
    """``yaw=10,roll=-5`` -> ``(10.0, 0.0, -5.0)``."""
    angles = dict.fromkeys(POSE_AXES, 0.0)
    for name, value in _pairs(text, "--pose", "yaw=10,pitch=-5"):
        if name not in angles:
            raise ConfigError(f"--pose: unknown axis '{name}'; use {', '.join(POSE_AXES)}")
        angles[name] = _number("--pose", name, value)
    return tuple(angles.values())  # type: ignore[return-value]


def parse_regions(text: str) -> tuple[str, ...]:
    """``eyes,mouth`` -> ``("eyes", "mouth")``."""
    return _comma_list("--regions", "region", text, REGIONS, "a comma list of")


def parse_expressions(text: str) -> tuple[str, ...]:
    """``all`` or ``happy,sad`` -> the expressions of a contact sheet."""
    if text.strip() == "all":
        return EXPRESSIONS
    return _comma_list("--expressions", "expression", text, EXPRESSIONS, "all or a comma list of")


def _comma_list(flag: str, what: str, text: str, allowed: tuple[str, ...], hint: str) -> tuple[str, ...]:
    """The names of a comma list, each one of ``allowed``.

    Raises:
        ConfigError: Naming the first unknown name (or the whole text when it names none) and the choices.
    """
    names = tuple(filter(None, (part.strip() for part in text.split(","))))
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ConfigError(f"{flag}: unknown {what} '{bad[0] if bad else text}'; use {hint} {', '.join(allowed)}")
    return names


def refine_expression(engine: Any, tracker: Any, steps: int = REFINE_STEPS) -> None:
    """Correct the engine's expression edit by re-tracking the edited still (image mode).

    The blendshapes the edit carries (``refined_channels``) are read off the rendered still and
    their shortfall against the request is added to the edit, ``steps`` times.
    """
    config = engine.expression
    source = engine.source_blendshapes
    mask = refined_channels(config, source)
    if not mask.any():
        return
    wanted = source + blendshape_offset(config, source)
    correction = np.zeros_like(source)
    for _ in range(steps):
        faces = tracker.track(engine.rest(), None)
        if not faces:
            return
        error = np.where(mask, wanted - np.asarray(faces[0].blendshapes, np.float64), 0.0)
        correction = np.clip(correction + error, -REFINE_LIMIT, REFINE_LIMIT)
        engine.set_expression(config, correction)


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


def render_sheet(engine: Any, tracker: Any, base: ExpressionConfig, names: Sequence[str],
                 strengths: Sequence[float] = (1.0,), columns: int = 5) -> np.ndarray:
    """The source, then the source with each expression at each strength (each edit refined by
    re-tracking with ``tracker``), as one labelled sheet; each tile is the face's part of the
    portrait, the only part an edit changes."""
    source = engine.source.image
    x0, y0, x1, y1 = engine.source.box
    tiles = [label(source[y0:y1, x0:x1], "source")]
    for name in names:
        for strength in strengths:
            engine.set_expression(dataclasses.replace(base, expression=name, strength=strength))
            refine_expression(engine, tracker)
            text = name if strength == 1.0 else f"{name} {strength:g}"
            tiles.append(label(engine.rest()[y0:y1, x0:x1], text))
    engine.set_expression(base)
    return contact_sheet(tiles, columns=min(len(tiles), columns))


def run_still(config: Any) -> int:
    """``--expression`` / ``--au`` / ``--pose`` / ``--expressions`` on the portrait alone.

    Raises:
        ConfigError: When ``--output`` is not an image.
        FacepaintError: No face in the source, a basis that cannot be loaded, an unwritable output.
    """
    from facepaint.plugins.base import Frame, load_plugin
    from facepaint.plugins.sinks.file import IMAGE_SUFFIXES, output_kind
    from facepaint.runtime.portrait import read_portrait
    from facepaint.runtime.session import Session

    if output_kind(str(config.output)) != "image":
        raise ConfigError(f"--output {config.output}: an edited still is an image; "
                          f"use one of {', '.join(IMAGE_SUFFIXES)}")
    image = read_portrait(config)
    with Session(config, live=False, image=image) as session:  # refines the edit when it opens
        if config.expressions:
            out = render_sheet(session.engine, session.tracker, config.engine.expression, config.expressions)
        else:
            out = session.engine.rest()
        if session.background is not None:
            out = session.background.apply(out)
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
