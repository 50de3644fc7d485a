"""Strict construction of frozen config dataclasses from mappings (CLI, TOML).

Unknown keys fail with a "did you mean" hint instead of being dropped or added silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from facepaint.engine.errors import ConfigError

T = TypeVar("T")


def build_config(cls: type[T], values: Mapping[str, Any] | None = None, *, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``values``, refusing unknown keys and wrong types.

    Nested dataclass fields accept a nested mapping. Values are checked against the field's
    annotation (``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[...]``, nested
    dataclasses): TOML's ``smoothing = "false"`` is a string, not a boolean, and is refused rather
    than read as true. An int is accepted where a float is expected, and a list where a tuple is.

    Args:
        cls: A dataclass type.
        values: Field values; missing fields take their defaults.
        where: Prefix for error messages (for example ``"tracker."``).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: On an unknown key, a value of the wrong type, or a value the dataclass rejects.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f"; did you mean '{where}{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"unknown config key '{where}{key}'{hint}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints.get(name, Any)
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            kwargs[name] = build_config(hint, value, where=f"{where}{name}.")  # type: ignore[arg-type]
        else:
            kwargs[name] = _checked(value, hint, f"{where}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(_located(str(exc), where or cls.__name__)) from None


def _checked(value: Any, hint: Any, key: str) -> Any:
    """``value`` if it fits ``hint`` (an int widened to float, a list made a tuple).

    Raises:
        ConfigError: Naming ``key``, the expected type and the value given.
    """
    converted = _convert(value, hint)
    if converted is _MISMATCH:
        raise ConfigError(f"config key '{key}' must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
    return converted


_MISMATCH = object()


def _convert(value: Any, hint: Any) -> Any:
    """``value`` fitted to ``hint``, or ``_MISMATCH``; annotations it does not know pass as they are."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            converted = _convert(value, arm)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if hint is type(None):
        return value if value is None else _MISMATCH
    if hint is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _MISMATCH
    if hint is str:
        return value if isinstance(value, str) else _MISMATCH
    if origin is tuple:
        return _convert_tuple(value, args)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _MISMATCH  # type: ignore[arg-type]
    return value


def _convert_tuple(value: Any, args: tuple[Any, ...]) -> Any:
    if not isinstance(value, (list, tuple)):
        return _MISMATCH
    items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
    if len(items) != len(value):
        return _MISMATCH
    converted = tuple(_convert(v, h) for v, h in zip(value, items, strict=True))
    return _MISMATCH if any(c is _MISMATCH for c in converted) else converted


def _describe(hint: Any) -> str:
    """A type annotation in words (``"an integer or none"``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in typing.get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "none"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is tuple:
        return f"a list of {len(typing.get_args(hint))} values" if Ellipsis not in typing.get_args(hint) else "a list"
    return getattr(hint, "__name__", str(hint))


def _located(message: str, where: str) -> str:
    """Prefix ``message`` with the config section it came from, unless it already names it."""
    section = where.rstrip(".")
    return message if message.startswith(section) else f"{section}: {message}"
