"""Virtual camera sink through pyvirtualcam (placeholder: live helper owns it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VirtualCamConfig:
    """The virtual camera.

    Attributes:
        size: (width, height) of the camera frames; the portrait is letterboxed into it.
        fps: Camera frame rate (None: the capture source's rate).
        backend: pyvirtualcam backend name (None: its platform default).
        device: Device name or path (None: the backend's first free one).
    """

    size: tuple[int, int] = (1280, 720)
    fps: float | None = None
    backend: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError(f"virtual_camera.size must be (width, height) >= 16, got {self.size}")
