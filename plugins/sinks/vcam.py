"""Virtual camera sink through pyvirtualcam: what video-call apps and OBS see as a webcam.

Frames are sent the moment they arrive, never through ``Camera.sleep_until_next_frame``: that call
sleeps the writer to hit a target rate, and in a pipeline fed by a live camera every such sleep is
latency handed to the next frame. The capture clock already paces the stream. When the input runs
faster than the camera's rate, surplus frames are skipped (counted), never delayed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from facepaint.engine.errors import SinkError
from facepaint.plugins.base import Frame

# Fraction of a frame period a frame may come early and still be sent (see ``VirtualCamSink._due``).
SLACK = 0.4


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
        if self.fps is not None and not 1.0 <= self.fps <= 240.0:
            raise ValueError(f"virtual_camera.fps must be in 1..240, got {self.fps}")


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``image`` inside ``size`` keeping its aspect ratio, with black bars.

    Args:
        image: (H, W, 3) uint8.
        size: (width, height) of the result.

    Returns:
        (height, width, 3) uint8; ``image`` itself when it already has that size.
    """
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    import cv2

    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    # INTER_AREA only where it matters (shrinking by more than 2x, where bilinear aliases): it
    # costs ~9 ms per 1 Mpx frame against ~1 ms for bilinear, on the live path.
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


def missing_vcam_hint(platform: str | None = None) -> str:
    """How to get a virtual camera device on ``platform`` (default: this one)."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return (
            "load the v4l2loopback module: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
            "(package v4l2loopback-dkms), or run without the virtual camera: --no-vcam"
        )
    return (
        "install OBS Studio >= 30 and start its virtual camera once (Start Virtual Camera, then Stop), "
        "or run without the virtual camera: --no-vcam"
    )


class VirtualCamSink:
    """Writes RGB frames into a pyvirtualcam ``Camera``.

    Attributes:
        size: (width, height) of the camera.
        fps: The camera's nominal rate.
        device: The device in use (for example ``/dev/video10`` or ``OBS Virtual Camera``).
        sent: Frames sent to the camera.
        skipped: Frames not sent because they came faster than ``fps``.
    """

    def __init__(
        self,
        config: VirtualCamConfig,
        fps: float,
        *,
        camera_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Open the virtual camera.

        Args:
            config: Size, backend and device; ``config.fps`` wins over ``fps`` when set.
            fps: The capture source's rate, used when ``config.fps`` is None.
            camera_factory: Builds the camera (default ``pyvirtualcam.Camera``; tests pass another).
            clock: Time in seconds for the rate limit.

        Raises:
            SinkError: When no virtual camera can be opened (the message says how to get one).
        """
        self.size = (config.size[0], config.size[1])
        self.fps = float(config.fps or fps)
        self.sent = 0
        self.skipped = 0
        self._clock = clock
        self._next_due: float | None = None
        self._closed = False
        self._cam = self._open(config, camera_factory)
        self.device = str(self._cam.device)

    def _open(self, config: VirtualCamConfig, factory: Callable[..., Any] | None) -> Any:
        import pyvirtualcam

        if factory is None:
            factory = pyvirtualcam.Camera
        if config.backend is not None and config.backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none on this system"
            raise SinkError(f"unknown virtual camera backend '{config.backend}'; available: {known}")
        width, height = self.size
        try:
            return factory(
                width, height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB,
                device=config.device, backend=config.backend,
            )
        except Exception as exc:  # noqa: BLE001 - backends raise RuntimeError, OSError, ValueError...
            reason = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            where = f" '{config.device}'" if config.device else ""
            raise SinkError(f"no virtual camera{where} could be opened ({reason}); {missing_vcam_hint()}") from None

    def write(self, frame: Frame) -> None:
        """Send one frame (letterboxed to the camera size when it is not already that size).

        Raises:
            SinkError: When the camera rejects the frame.
        """
        if self._closed:
            return
        if not self._due():
            self.skipped += 1
            return
        image = letterbox(frame.image, self.size)
        try:
            self._cam.send(np.ascontiguousarray(image))
        except Exception as exc:  # noqa: BLE001 - the backend's own exception types vary per OS
            raise SinkError(f"virtual camera {self.device} stopped accepting frames: {exc}") from None
        self.sent += 1

    def _due(self) -> bool:
        """Rate limit by skipping, never sleeping.

        A frame is sent when it comes no earlier than ``SLACK`` periods before its slot, which keeps
        on-time frames that arrive with jitter. The next slot never trails ``now`` by more than the
        slack, so a pause does not bank a burst of frames.
        """
        now = self._clock()
        period = 1.0 / self.fps
        slack = SLACK * period
        if self._next_due is not None and now < self._next_due - slack:
            return False
        base = now if self._next_due is None else max(self._next_due, now - slack)
        self._next_due = base + period
        return True

    def close(self) -> None:
        """Release the virtual camera; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._cam.close()

    def abort(self) -> None:
        """Same as ``close()``: a camera has nothing to discard."""
        self.close()

    def __enter__(self) -> VirtualCamSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
