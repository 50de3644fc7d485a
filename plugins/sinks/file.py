"""File sink: PyAV H.264 (+ the driving audio) or a still image (placeholder: offline helper owns it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderConfig:
    """How videos are written.

    Attributes:
        codec: Video codec (libx264).
        crf: H.264 constant rate factor (0-51, lower is better quality).
        preset: x264 preset (ultrafast ... veryslow).
    """

    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ValueError(f"encoder.crf must be in 0..51, got {self.crf}")
