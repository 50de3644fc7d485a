"""``--background IMAGE|COLOR|blur``: the value read into a ``BackgroundReplacer``."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.person_matte import BackgroundReplacer, blurred, cover
from facepaint.engine.track import FaceTrack
from facepaint.plugins.media import READ_IMAGES

BACKGROUND_FORMS = "an image file, a colour (#00ff00 or a name: green, blue, white, black, grey) or blur"
COLOURS = {"green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255), "black": (0, 0, 0),
           "grey": (128, 128, 128), "gray": (128, 128, 128)}


def parse_background(spec: str) -> tuple[str, tuple[int, int, int] | Path | None]:
    """``("colour", rgb)``, ``("image", path)`` or ``("blur", None)`` for a ``--background`` value.

    Raises:
        ConfigError: For a value that is none of ``BACKGROUND_FORMS``.
        InputError: For an image file that does not exist.
    """
    text = spec.strip()
    if text.lower() == "blur":
        return "blur", None
    if text.lower() in COLOURS:
        return "colour", COLOURS[text.lower()]
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return "colour", tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    path = Path(text)
    if path.suffix.lower() in READ_IMAGES:
        if not path.is_file():
            raise InputError(f"--background image {text} not found; give {BACKGROUND_FORMS}")
        return "image", path
    raise ConfigError(f"--background '{spec}' is not {BACKGROUND_FORMS}")


def open_background(spec: str, image: np.ndarray, face: FaceTrack,
                    matte: np.ndarray | None = None) -> BackgroundReplacer:
    """The replacer for a ``--background`` value over the portrait ``image`` (``matte``: that of
    a replacer of the same portrait, reused; None: found here).

    Raises:
        ConfigError / InputError: A value of no known form, a missing or unreadable image.
    """
    return BackgroundReplacer(image, face, background_plate(spec, image, face), matte)


def background_plate(spec: str, image: np.ndarray, face: FaceTrack) -> np.ndarray:
    """The RGB uint8 plate of a ``--background`` value, the size of the portrait ``image``.

    Raises:
        ConfigError / InputError: A value of no known form, a missing or unreadable image.
    """
    kind, value = parse_background(spec)
    h, w = image.shape[:2]
    if kind == "colour":
        background = np.empty_like(image)
        background[...] = value
    elif kind == "image":
        loaded = cv2.imread(str(value), cv2.IMREAD_COLOR)
        if loaded is None:
            raise InputError(f"--background image {value} cannot be read as an image; give {BACKGROUND_FORMS}")
        background = cover(cv2.cvtColor(loaded, cv2.COLOR_BGR2RGB), (w, h))
    else:
        background = blurred(image, face)
    return background
