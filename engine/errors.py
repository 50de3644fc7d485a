"""The one exception hierarchy of facepaint-live.

Every message is one line that states what was expected, what was found and what to do; the CLI
prints it as ``facepaint-live: error: <message>`` and exits with code 2, without a traceback.
"""

from __future__ import annotations


class FacepaintError(Exception):
    """Base of every error facepaint-live raises on purpose."""


class ConfigError(FacepaintError):
    """A configuration value or key is wrong (unknown key, value out of range, conflicting flags)."""


class InputError(FacepaintError):
    """A user-supplied file or path is unusable: missing, unreadable, not an image/video, bad folder."""


class NoFaceError(InputError):
    """No face was found where one is required (the source portrait)."""


class SourceError(FacepaintError):
    """A capture source failed while running (camera unplugged, stream ended unexpectedly)."""


class SinkError(FacepaintError):
    """An output could not be opened or written (no virtual camera device, encoder failure)."""


class ModelError(FacepaintError):
    """A model file is missing, unreadable or fails its checksum."""


class BackendUnavailable(FacepaintError):
    """An inference backend (onnxruntime, TensorRT, CUDA) or a precision is not available here."""


class EngineMismatch(FacepaintError):
    """A compiled engine was built for another GPU, TensorRT version, precision or checkpoint."""
