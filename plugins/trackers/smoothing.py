"""One-Euro smoothing of tracks in video mode (Casiez, Roussel and Vogel, CHI 2012).

The One-Euro filter is a low-pass filter whose cutoff rises with the signal's speed: at rest the
cutoff is ``min_cutoff`` (little jitter), and during fast motion it grows by ``beta`` times the
speed (little lag), which is what keeps a 3-frame blink or a fast mouth opening while a still face
stays still. Speeds are measured in units of ``scale`` per second, so one ``beta`` can serve
landmarks in pixels (scaled by the face size), blendshapes in [0, 1] and angles in degrees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.engine.track import FaceTrack

# Units of speed per field, so that one beta serves all of them. Eyelids and lips travel a small
# fraction of the face in a blink or a mouth opening, so landmark speed is counted in tenths of
# the face size (with whole faces, a blink barely raised the cutoff and lost its depth); a
# blendshape spans 1; 30 degrees is a large head turn; translation is counted in tenths of the
# face size in the tracker's own units.
_LANDMARK_UNIT = 0.1
_ROTATION_UNIT_DEG = 30.0


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter with ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """A One-Euro filter over numpy arrays of a fixed shape, each element filtered independently.

    Args:
        min_cutoff: Cutoff frequency at rest, in Hz (lower: steadier, more lag at low speed).
        beta: Cutoff increase per unit of speed (higher: less lag on fast motion).
        d_cutoff: Cutoff of the low-pass filter on the speed estimate, in Hz.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample.

        Args:
            x: The new sample; its shape must stay the same between resets.
            t: Its time in seconds; a sample not later than the previous one restarts the filter.
            scale: Unit of ``x`` for the speed term (for example the face size for pixels).

        Returns:
            The filtered sample, float64, same shape as ``x``.
        """
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx) / scale
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class TrackSmoother:
    """Smooths one face's tracks over time: landmarks, blendshapes, rotation and translation.

    The AU vector is recomputed from the smoothed blendshapes and rotation by ``au_fn`` so that it
    stays consistent with them.

    Args:
        min_cutoff: One-Euro cutoff at rest in Hz.
        beta: One-Euro speed coefficient, per unit of speed (tenths of the face size, blendshape
            units, 30 degrees).
        d_cutoff: Cutoff of the speed estimate in Hz.
        au_fn: ``(blendshapes, rotation) -> au`` of the tracker.
        translation_scale: Size of a face in the tracker's translation units.
    """

    def __init__(
        self,
        min_cutoff: float,
        beta: float,
        d_cutoff: float,
        au_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
        translation_scale: float,
    ) -> None:
        self._filters = {
            name: OneEuroFilter(min_cutoff, beta, d_cutoff)
            for name in ("landmarks", "blendshapes", "rotation", "translation")
        }
        self._au_fn = au_fn
        self._translation_scale = translation_scale

    def reset(self) -> None:
        """Forget the past (a new stream, or the face was lost)."""
        for f in self._filters.values():
            f.reset()

    def __call__(self, track: FaceTrack, t: float) -> FaceTrack:
        """Return ``track`` smoothed with the previous ones, at time ``t`` in seconds."""
        x0, y0, x1, y1 = track.bbox
        face_size = max(math.hypot(x1 - x0, y1 - y0), 1.0)
        f = self._filters
        landmarks = f["landmarks"](track.landmarks, t, face_size * _LANDMARK_UNIT)
        blendshapes = np.clip(f["blendshapes"](track.blendshapes, t), 0.0, 1.0).astype(np.float32)
        rotation = f["rotation"](track.rotation, t, _ROTATION_UNIT_DEG).astype(np.float32)
        translation = f["translation"](track.translation, t, self._translation_scale * _LANDMARK_UNIT)
        return dataclasses.replace(
            track,
            landmarks=landmarks.astype(np.float32),
            blendshapes=blendshapes,
            rotation=rotation,
            translation=translation,
            au=self._au_fn(blendshapes, rotation),
        )


class StreamFollower:
    """Video-mode bookkeeping shared by the trackers: timestamps, misses and smoothing of one face.

    Args:
        smoother: The smoother of the followed face, or None for raw tracks.
    """

    def __init__(self, smoother: TrackSmoother | None) -> None:
        self.frames_without_face = 0
        self._smoother = smoother
        self._last_ms: int | None = None

    def reset(self) -> None:
        """Start a new stream: any timestamp is accepted next, and smoothing starts afresh."""
        self._last_ms = None
        if self._smoother is not None:
            self._smoother.reset()

    def check_timestamp(self, timestamp_ms: int) -> int:
        """Return ``timestamp_ms`` as an int if it is later than the previous frame's.

        Raises:
            InputError: When it does not increase.
        """
        timestamp_ms = int(timestamp_ms)
        if self._last_ms is not None and timestamp_ms <= self._last_ms:
            raise InputError(
                f"video timestamps must increase: got {timestamp_ms} ms after {self._last_ms} ms; "
                "call reset() before a new stream"
            )
        self._last_ms = timestamp_ms
        return timestamp_ms

    def follow(self, faces: list[FaceTrack], timestamp_ms: int) -> list[FaceTrack]:
        """Keep the largest face (``faces`` is sorted) and smooth it; count frames with none."""
        if not faces:
            self.frames_without_face += 1
            if self._smoother is not None:
                # A face that comes back elsewhere must not glide there from where it was lost.
                self._smoother.reset()
            return []
        if self._smoother is None:
            return faces[:1]
        return [self._smoother(faces[0], timestamp_ms / 1000.0)]


class CenteredSmoother:
    """Zero-lag smoothing for offline renders: each face averaged with its neighbours.

    A causal filter (One-Euro) must trail the motion it smooths; a file render can look ahead, so
    each frame's face is a Gaussian-weighted mean of the faces ``radius`` frames either side. Items
    are held back ``radius`` frames; ``flush()`` releases the rest at the end of the stream. A frame
    without a face stays without one (a lost face is not invented from its neighbours).

    Args:
        radius: Frames looked at on each side.
        sigma: Gaussian width in frames (small: blinks of 2-4 frames keep most of their depth).
    """

    FIELDS = ("landmarks", "blendshapes", "rotation", "translation", "au")

    def __init__(self, radius: int = 1, sigma: float = 0.8) -> None:
        if radius < 0 or sigma <= 0:
            raise ValueError(f"need radius >= 0 and sigma > 0, got {radius}, {sigma}")
        self.radius = radius
        self._weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        self._items: list[Any] = []
        self._faces: list[FaceTrack | None] = []
        self._next = 0  # index in the buffers of the next item to release

    def push(self, item: Any, face: FaceTrack | None) -> list[tuple[Any, FaceTrack | None]]:
        """Add one frame's item and face; returns the (item, smoothed face) pairs now complete."""
        self._items.append(item)
        self._faces.append(face)
        out = []
        while self._next + self.radius < len(self._items):
            out.append(self._release())
        drop = max(0, self._next - self.radius)  # keep the past half-window only
        del self._items[:drop], self._faces[:drop]
        self._next -= drop
        return out

    def flush(self) -> list[tuple[Any, FaceTrack | None]]:
        """Release every held item (end of stream)."""
        out = [self._release() for _ in range(self._next, len(self._items))]
        self._items, self._faces, self._next = [], [], 0
        return out

    def _release(self) -> tuple[Any, FaceTrack | None]:
        i = self._next
        self._next += 1
        centre = self._faces[i]
        if centre is None:
            return self._items[i], None
        lo = max(0, i - self.radius)
        pairs = [(self._weights[j - i + self.radius], f) for j, f in enumerate(self._faces[lo:i + self.radius + 1], lo)
                 if f is not None and f.topology == centre.topology]
        total = sum(w for w, _ in pairs)
        mean = {name: sum(w * getattr(f, name) for w, f in pairs) / total for name in self.FIELDS}
        mean = {name: value.astype(getattr(centre, name).dtype) for name, value in mean.items()}
        return self._items[i], dataclasses.replace(centre, **mean)
