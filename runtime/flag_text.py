"""The flags whose value is text with a structure (``--au AU12=0.8``, ``--size 1280x720``, comma
lists), read into config values; ``flags.FLAGS`` names them as each row's ``parse``."""

from __future__ import annotations

from facepaint.engine.errors import ConfigError
from facepaint.engine.expression import EXPRESSIONS, POSE_AXES
from facepaint.engine.regions import REGIONS


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


def parse_size(text: str) -> tuple[int, int]:
    """``1280x720`` -> ``(1280, 720)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must look like 1280x720, got '{text}'") from None
    return w, h


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
