"""The page's controls, read from the main command's parser: the one place the UI learns its flags.

Every control is one flag of ``facepaint.runtime.cli.build_parser()`` (name, help, choices, type,
default). The page keeps its settings as ``{flag: text}``; ``to_argv`` turns them back into the
flags the CLI takes, so "copy as command", "save as TOML" and the running config are all built by
the CLI's own parsing (``flags.config_layer`` / ``build_app_config``) and refuse what the CLI refuses.
When the flags move into one table (``runtime/flags.py``), only this module reads it instead.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from facepaint.engine.errors import ConfigError
from facepaint.engine.expression import STRENGTH_RANGE

# Slider ranges of the numeric flags (the parser only knows "a float"); from the ranges the
# engine checks (STRENGTH_RANGE, the transformer gains' 0..2 in their help).
RANGES: dict[str, tuple[float, float, float]] = {
    "--strength": (*STRENGTH_RANGE, 0.05),
    "--expression-scale": (0.0, 2.0, 0.05),
    "--pose-scale": (0.0, 2.0, 0.05),
}
# Flags the page owns elsewhere (the portrait/camera pickers, start/stop, the record and virtual
# camera buttons) or that make no sense in a page (a progress bar, a preview window).
PAGE_OWNED = ("--source", "--driving", "--cam", "--output", "--config", "--quiet", "--preview", "--no-vcam",
              "--stats-json", "--duration", "--expressions", "--overwrite", "--loop")
# Flags whose change reaches the next live frame (the rest restart the pipeline).
LIVE = ("--expression", "--strength", "--au", "--pose", "--regions", "--expression-scale", "--pose-scale",
        "--background")


@dataclass(frozen=True)
class Control:
    """One flag as the page shows it.

    Attributes:
        flag: ``--expression-scale``.
        kind: ``switch`` (store_true), ``choice``, ``number`` or ``text``.
        help: The flag's help line.
        choices: The allowed values (``choice``).
        range: (min, max, step) of a slider (``number`` with a known range).
        group: The parser's argument group title (``expression control``, ...).
        live: The change reaches the next frame without a restart.
    """

    flag: str
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float, float] | None = None
    group: str = ""
    live: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "kind": self.kind, "help": self.help, "choices": list(self.choices),
                "range": list(self.range) if self.range else None, "group": self.group, "live": self.live}


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "switch"
    if action.choices:
        return "choice"
    if action.type in (int, float):
        return "number"
    return "text"


def controls(parser: argparse.ArgumentParser | None = None) -> tuple[Control, ...]:
    """The page's controls, one per flag of ``parser`` (the main command's by default)."""
    if parser is None:
        from facepaint.runtime.cli import build_parser

        parser = build_parser()
    groups = {id(a): g.title or "" for g in parser._action_groups for a in g._group_actions}
    out = []
    for action in parser._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None or flag == "--help" or flag in PAGE_OWNED:
            continue
        choices = tuple(str(c) for c in action.choices or ())
        if flag == "--reference":  # first-frame is an accepted spelling of first, not a choice to show
            choices = tuple(c for c in choices if c != "first-frame")
        out.append(Control(flag, _kind(action), action.help or "", choices, RANGES.get(flag),
                           groups.get(id(action), ""), flag in LIVE))
    return tuple(out)


def to_argv(values: Mapping[str, Any]) -> list[str]:
    """The command-line flags of ``values`` (``{flag: text or bool}``; empty text and False omitted).

    Raises:
        ConfigError: A flag the main command does not have.
    """
    known = {c.flag: c for c in controls()} | dict.fromkeys(PAGE_OWNED)
    argv: list[str] = []
    for flag, value in values.items():
        if flag not in known:
            raise ConfigError(f"unknown setting '{flag}'")
        if value is None or value is False or value == "":
            continue
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def parse(values: Mapping[str, Any]) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The CLI's namespace and config layer for ``values``, checked as the CLI checks them.

    Raises:
        ConfigError: What the CLI would say, in one line.
    """
    from facepaint.runtime.cli import build_parser
    from facepaint.runtime.flags import config_layer

    parser = build_parser()
    parser.error = _refuse  # type: ignore[method-assign]  # the CLI's message, raised instead of exiting
    args = parser.parse_args(to_argv(values))
    return args, config_layer(args)


def _refuse(message: str) -> NoReturn:
    raise ConfigError(message)


def command_line(values: Mapping[str, Any]) -> str:
    """``facepaint-live --source me.jpg ...``: the settings as one shell command."""
    return shlex.join(["facepaint-live", *to_argv(values)])


def to_toml(layer: Mapping[str, Any]) -> str:
    """A config layer as TOML text (``--config`` reads it back): scalars first, then tables."""
    lines: list[str] = []
    _table(lines, [], layer)
    return "\n".join(lines).strip() + "\n"


def _table(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    if path and scalars:
        lines += ["", f"[{'.'.join(path)}]"]
    lines += [f"{key} = {_value(value)}" for key, value in scalars.items()]
    for key, value in table.items():
        if isinstance(value, Mapping):
            _table(lines, [*path, key], value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
