"""Strict construction of frozen config dataclasses from mappings (CLI, TOML).

Unknown keys fail with a "did you mean" hint instead of being dropped or added silently.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from facepaint.engine.errors import ConfigError

T = TypeVar("T")


def build_config(cls: type[T], values: Mapping[str, Any] | None = None, *, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``values``, refusing unknown keys.

    Nested dataclass fields accept a nested mapping.

    Args:
        cls: A dataclass type.
        values: Field values; missing fields take their defaults.
        where: Prefix for error messages (for example ``"tracker."``).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: On an unknown key or a value the dataclass rejects.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f"; did you mean '{where}{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"unknown config key '{where}{key}'{hint}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        ftype = fields[name].type
        sub = _dataclass_type(cls, name, ftype)
        if sub is not None and isinstance(value, Mapping):
            value = build_config(sub, value, where=f"{where}{name}.")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(_located(str(exc), where or cls.__name__)) from None


def _located(message: str, where: str) -> str:
    """Prefix ``message`` with the config section it came from, unless it already names it."""
    section = where.rstrip(".")
    return message if message.startswith(section) else f"{section}: {message}"


def _dataclass_type(cls: type, name: str, ftype: Any) -> type | None:
    """Return the dataclass type of field ``name`` if it is one (resolving string annotations)."""
    import typing

    if isinstance(ftype, str):
        try:
            ftype = typing.get_type_hints(cls).get(name, ftype)
        except Exception:  # noqa: BLE001 - unresolved forward refs simply mean "not a dataclass"
            return None
    return ftype if dataclasses.is_dataclass(ftype) else None
