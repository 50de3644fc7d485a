"""The test doubles shared by the runtime tests: tracker, engine, sinks and clips that need no model.

Imported as ``fakes`` (``tests/`` is on ``pythonpath`` in pyproject's pytest settings). They follow
the real protocols (``facepaint.plugins.base.Tracker``/``Sink``, the engine's ``render``/
``recalibrate``/``close``), and ``test_fakes_follow_the_protocols`` keeps them honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import Frame
from facepaint.plugins.sources.paced import PacedFileSource

CAM = (64, 48)  # (width, height) of the live clips


def fake_face(w: int, h: int, scale: float = 1.0) -> FaceTrack:
    """A 478-point face spread over the middle of a (w, h) image, ``scale`` of the usual size."""
    lm = np.zeros((478, 3), np.float32)
    lm[:, 0] = np.linspace(w * 0.3, w * (0.3 + 0.4 * scale), 478)
    lm[:, 1] = np.linspace(h * 0.3, h * (0.3 + 0.4 * scale), 478)
    return FaceTrack(lm, np.zeros(52, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32),
                     np.zeros(20, np.float32), "mediapipe478", (w, h))


def not_black(image: np.ndarray) -> bool:
    """The default "is there a face" test: anything but a black frame."""
    return bool(image.max() >= 10)


class FakeTracker:
    """Finds a face where ``has_face(image)``; ``faces`` faces in stills (image mode)."""

    def __init__(self, has_face: Callable[[np.ndarray], bool] = not_black, faces: int = 1) -> None:
        self.has_face, self.faces = has_face, faces
        self.timestamps: list[int | None] = []
        self.resets: list[int] = []  # len(timestamps) at each reset: where a new stream starts
        self.closed = 0

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[FaceTrack]:
        self.timestamps.append(timestamp_ms)
        if not self.has_face(image):
            return []
        h, w = image.shape[:2]
        n = self.faces if timestamp_ms is None else 1
        return [fake_face(w, h, 1.0 / (k + 1)) for k in range(n)]

    def reset(self) -> None:
        self.resets.append(len(self.timestamps))

    def close(self) -> None:
        self.closed += 1


class NoFaceTracker(FakeTracker):
    """Finds nothing: the source has no face."""

    def __init__(self) -> None:
        super().__init__(has_face=lambda image: False)


class FakeEngine:
    """Returns ``image`` (a 40x30 grey portrait by default) after ``delay`` seconds; records
    (face found, stream time) per frame; raises on frame ``fail_at``."""

    def __init__(self, image: np.ndarray | None = None, *, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.image = np.full((40, 30, 3), 128, np.uint8) if image is None else image
        self.delay, self.fail_at = delay, fail_at
        self.seen: list[tuple[bool, float]] = []
        self.recalibrated = self.closed = 0
        self.reference: FaceTrack | None = None
        self.expressions: list[object] = []
        self.expression = None  # the edit it was built with: none
        self.following_neutral = False
        self.models: tuple[str, ...] = ()

    @property
    def faces(self) -> list[bool]:
        """Whether each rendered frame had a face."""
        return [has for has, _ in self.seen]

    def render(self, frame: np.ndarray | None, face: FaceTrack | None, t: float) -> np.ndarray:
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise InputError("engine refused frame")
        time.sleep(self.delay)
        self.seen.append((face is not None, t))
        return self.image.copy()

    def recalibrate(self) -> None:
        self.recalibrated += 1

    def calibrate(self, face: FaceTrack) -> None:
        self.reference = face

    def set_expression(self, expression: object) -> None:
        self.expressions.append(expression)

    def reference_state(self) -> str:
        return "auto (fake)" if self.following_neutral else ""

    def close(self) -> None:
        self.closed += 1


class ListSink:
    """Keeps (arrival time, frame) of everything written."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, Frame]] = []
        self.closed = 0

    def write(self, frame: Frame) -> None:
        self.frames.append((time.perf_counter(), frame))

    def close(self) -> None:
        self.closed += 1

    def abort(self) -> None:
        self.close()


class Clip:
    """A non-live 25 fps clip of small frames whose pixel value is the frame number."""

    live = False
    frame_count = None

    def __init__(self, n: int = 50, fps: float = 25.0) -> None:
        self.n, self.fps, self.size = n, fps, CAM

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            yield Frame(np.full((CAM[1], CAM[0], 3), i % 250, np.uint8), i, i / self.fps, 0.0)

    def rewind(self) -> None:
        pass  # every iteration starts from frame 0

    def close(self) -> None:
        pass


def paced_clip(n: int = 50, loop: bool = False) -> PacedFileSource:
    """``Clip(n)`` played on its own clock, as a camera."""
    return PacedFileSource("clip", loop=loop, opener=lambda p: Clip(n))


def frame_number(predicate: Callable[[int], bool]) -> Callable[[np.ndarray], bool]:
    """A ``has_face`` test on the frame number that ``Clip`` writes into every pixel."""
    return lambda image: predicate(int(image[0, 0, 0]))


def live_parts(n: int = 50, delay: float = 0.0, tracker: FakeTracker | None = None, sinks: list | None = None,
               loop: bool = False, preview: object | None = None):  # noqa: ANN201 - LiveParts, imported lazily
    """``LiveParts`` over a paced ``Clip(n)``, a fake tracker and an engine taking ``delay`` s a frame."""
    from facepaint.runtime.live import LiveParts

    return LiveParts(paced_clip(n, loop=loop), FakeSession(tracker or FakeTracker(), FakeEngine(delay=delay)),
                     sinks if sinks is not None else [ListSink()], preview, CAM)


class FakeSession:
    """A live ``Session`` over a fake tracker and engine (no smoothing: the tracker's own)."""

    def __init__(self, tracker: object, engine: object) -> None:
        self.tracker, self.engine = tracker, engine

    def driver(self):  # noqa: ANN201 - Driver, imported lazily
        from facepaint.runtime.session import Driver

        return Driver(self.tracker, self.engine, None)  # type: ignore[arg-type]

    def replace_engine(self, engine: object) -> None:
        old, self.engine = self.engine, engine
        old.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.engine.close()  # type: ignore[attr-defined]
        self.tracker.close()  # type: ignore[attr-defined]


class RecordingBackend:
    """A pyvirtualcam backend that keeps what it is sent (the documented Backend interface)."""

    instances: list[RecordingBackend] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.name = device or "/dev/video-rec"
        self.frames: list[np.ndarray] = []
        self.closed = 0
        RecordingBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed += 1

    def device(self) -> str:
        return self.name

    def native_fourcc(self) -> int | None:
        return None


def mux_silence(container: Any, stream: Any, blocks: int) -> None:
    """Encode ``blocks`` x 1024 samples of mono silence into an audio ``stream`` of a PyAV
    ``container`` (rate from the stream) and flush the encoder."""
    import av

    for i in range(blocks):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, i * 1024
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def backward_warp_spec(size: tuple[int, int] = (64, 64), source_size: tuple[int, int] | None = None) -> Any:
    """The ``ModelSpec`` of ``engine.backends.modules.BackwardWarp`` (no weights) with dynamic batch
    and sizes: the smallest model the backends and the exporters can run (``size``: example output
    (height, width); ``source_size``: example source, ``size`` if omitted)."""
    from facepaint.engine.backends.spec import ModelSpec, TensorSpec

    src_h, src_w = source_size or size
    height, width = size
    return ModelSpec(
        architecture="backward_warp",
        config={},
        inputs=(
            TensorSpec("image", (1, 3, src_h, src_w), "float32", ("batch", None, "src_h", "src_w")),
            TensorSpec("backward_map", (1, height, width, 2), "float32", ("batch", "height", "width", None)),
        ),
        outputs=("warped",),
    )


def maps_to_tensor(map_x: np.ndarray, map_y: np.ndarray) -> Any:
    """cv2-style ``(map_x, map_y)`` float arrays of shape (H, W) as one (1, H, W, 2) tensor."""
    import torch

    return torch.from_numpy(np.stack([map_x, map_y], axis=-1).astype(np.float32, copy=False))[None]


def image_to_tensor(image: np.ndarray) -> Any:
    """An (H, W, 3) uint8 image as a (1, 3, H, W) float tensor in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)[None]


def write_clip(path: Any, images: list[np.ndarray], fps: int = 30) -> Any:
    """``images`` (RGB, one size) encoded as an H.264 clip at ``fps``; returns ``path``."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for im in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(im), format="rgb24")))
        out.mux(stream.encode(None))
    return path
