"""Faults while running: a camera that vanishes (and comes back), a virtual camera that goes away,
SIGINT / SIGTERM mid-render, an exception inside one pipeline stage, a GPU out of memory."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facepaint.runtime import session


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("facepaint-") and t.is_alive()]


class PacedCapture:
    """A cv2.VideoCapture look-alike at 25 fps showing real driving frames; ``fails(n)`` unplugs it."""

    def __init__(self, frames: list[np.ndarray], fails: Any = lambda n: False, opened: bool = True) -> None:
        self.frames, self.fails, self.opened, self.reads = frames, fails, opened, 0
        self._next = time.perf_counter()

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        import cv2

        h, w = self.frames[0].shape[:2]
        return {cv2.CAP_PROP_FRAME_WIDTH: w, cv2.CAP_PROP_FRAME_HEIGHT: h, cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        self._next += 0.04
        time.sleep(max(0.0, self._next - time.perf_counter()))
        self.reads += 1
        if self.fails(self.reads):
            return False, None
        return True, np.ascontiguousarray(self.frames[self.reads % len(self.frames)][:, :, ::-1])

    def release(self) -> None:
        self.opened = False


class Unplug:
    """Capture factory: the first camera dies after ``alive`` reads; it is back after ``away_s``
    seconds (never, with None)."""

    def __init__(self, frames: list[np.ndarray], alive: int, away_s: float | None) -> None:
        self.frames, self.alive, self.away_s = frames, alive, away_s
        self.opened, self.died_at = 0, None

    def __call__(self, device: Any) -> PacedCapture:
        self.opened += 1
        if self.opened == 1:
            return PacedCapture(self.frames, fails=self._die)
        back = self.away_s is not None and time.monotonic() - self.died_at >= self.away_s
        return PacedCapture(self.frames, opened=back)

    def _die(self, reads: int) -> bool:
        if reads > self.alive and self.died_at is None:
            self.died_at = time.monotonic()
        return reads > self.alive


def test_camera_vanishes_and_comes_back(inputs: Any, run_cli: Any, check: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from facepaint.plugins.sources import webcam

    plug = Unplug(inputs.driving_frames(8), alive=20, away_s=1.0)
    monkeypatch.setattr(webcam, "_open_cv2", plug)
    rec = tmp_path / "rec.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--cam", "0", "--no-vcam", "--output", rec,
                     "--duration", "4")
    assert result.code == 0, result.err
    assert plug.opened >= 3  # unplugged, retried while away, reopened when back
    frames = check.decoded(rec)
    # The recording keeps real time across the gap (the last frame repeated), about 4 s at 25 fps.
    assert 70 <= len(frames) <= 105
    assert _stage_threads() == []


def test_camera_vanishes_for_good(inputs: Any, run_cli: Any, check: Any, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from facepaint.plugins.sources import webcam

    monkeypatch.setattr(webcam, "_open_cv2", Unplug(inputs.driving_frames(8), alive=15, away_s=None))
    rec = tmp_path / "rec.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--cam", "0", "--no-vcam", "--output", rec)
    errors = [line for line in result.lines if line.startswith("facepaint-live: error:")]
    assert result.code == 2 and "Traceback" not in result.err
    assert errors == [errors[0]] and "did not come back within 3 s; check the cable" in errors[0]
    # What was recorded before the camera died is a finished, playable file (never a partial one).
    assert len(check.decoded(rec)) > 0
    assert not list(tmp_path.glob(".rec.mp4.*"))
    assert _stage_threads() == []


class GoneBackend:
    """A pyvirtualcam backend whose device disappears after ``LIMIT`` frames."""

    LIMIT = 10

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.sent = 0

    def send(self, frame: np.ndarray) -> None:
        self.sent += 1
        if self.sent > self.LIMIT:
            raise OSError(19, "No such device")

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "/dev/video42"

    def native_fourcc(self) -> int | None:
        return None


def test_virtual_camera_goes_away(inputs: Any, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyvirtualcam

    from facepaint.plugins.sources import webcam

    monkeypatch.setattr(webcam, "_open_cv2", lambda device: PacedCapture(inputs.driving_frames(8)))
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "gone", GoneBackend)
    result = run_cli("--source", inputs.portrait_file(), "--cam", "0", "--vcam-backend", "gone", "--duration", "20")
    errors = [line for line in result.lines if line.startswith("facepaint-live: error:")]
    assert result.code == 2 and "Traceback" not in result.err and len(errors) == 1
    assert "virtual camera /dev/video42 stopped accepting frames ([Errno 19] No such device)" in errors[0]
    assert "--no-vcam" in errors[0]
    assert _stage_threads() == []


def _default_signals() -> None:
    """In the child: SIGINT as a terminal delivers it. A shell that runs the tests in the background
    starts them with SIGINT ignored, which Python would then keep ignoring (as users of nohup want)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _command() -> list[str]:
    script = Path(sys.executable).with_name("facepaint-live")
    return [str(script)] if script.exists() else [sys.executable, "-m", "facepaint.runtime.cli"]


def _long_clip(inputs: Any, check: Any) -> Path:
    """8 s of driving (200 frames): long enough to be stopped part-way on any machine."""
    return inputs.get("long.mp4", lambda p: check.write_video(p, inputs.driving_frames(40) * 5))


def _wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no {pattern} after {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("existing", [False, True])
def test_signal_mid_render_leaves_nothing_partial(sig: int, code: int, word: str, existing: bool, inputs: Any,
                                                   check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    if existing:
        out.write_bytes(b"the previous render")
    proc = subprocess.Popen([*_command(), "--source", str(inputs.portrait_file()), "--driving",
                             str(_long_clip(inputs, check)), "--output", str(out), "--quiet", "--overwrite"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    _wait_for(".out.mp4.*.partial.mp4", tmp_path, proc)
    time.sleep(0.3)  # some frames are in the file
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [f"facepaint-live: {word}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.mp4"] if existing else [])
    if existing:
        assert out.read_bytes() == b"the previous render"


@pytest.mark.slow
def test_sigterm_mid_live_recording_finishes_it(inputs: Any, check: Any, tmp_path: Path) -> None:
    rec = tmp_path / "rec.mp4"
    proc = subprocess.Popen([*_command(), "--source", str(inputs.portrait_file()), "--cam",
                             str(_long_clip(inputs, check)), "--loop", "--no-vcam", "--output", str(rec), "--quiet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    _wait_for(".rec.mp4.*.partial.mp4", tmp_path, proc)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "facepaint-live: terminated"
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]
    assert len(check.decoded(rec)) >= 25  # a complete file: it decodes to the end


class FailingEngine:
    """The real engine, whose ``render`` raises ``error`` from the ``at``-th frame on."""

    def __init__(self, real: Any, error: BaseException, at: int = 3) -> None:
        self.real, self.error, self.at, self.count = real, error, at, 0

    def render(self, *args: Any, **kwargs: Any) -> np.ndarray:
        self.count += 1
        if self.count >= self.at:
            raise self.error
        return self.real.render(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("error,code,words", [
    (RuntimeError("boom"), 1, ["internal error in the 'render' stage: RuntimeError: boom", "FACEPAINT_TRACEBACK=1"]),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), 1,
     ["error: out of memory in the 'render' stage (CUDA out of memory. Tried to allocate 2.00 GiB)"]),
])
def test_exception_inside_one_stage(error: BaseException, code: int, words: list[str], inputs: Any, run_cli: Any,
                                    check: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = session.open_engine
    monkeypatch.setattr(session, "open_engine",
                        lambda *args, **kwargs: FailingEngine(real_open(*args, **kwargs), error))
    monkeypatch.delenv("FACEPAINT_TRACEBACK", raising=False)
    out = tmp_path / "out.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--driving", _long_clip(inputs, check), "--output", out)
    assert result.code == code and "Traceback" not in result.err
    assert len(result.lines) == 1, result.err
    for word in words:
        assert word in result.lines[0]
    assert list(tmp_path.iterdir()) == []  # the encoder stopped too and its temporary file is gone
    assert _stage_threads() == []  # decode, track and encode stopped with it


def test_failing_stage_is_named_on_the_exception() -> None:
    from facepaint.runtime.pipeline import Pipeline, failed_stage

    def explode(item: int) -> int:
        if item == 5:
            raise ValueError("bad item")
        return item

    seen: list[int] = []
    with Pipeline("p") as pipe:
        pipe.source("numbers", range(1000))
        pipe.stage("explode", explode)
        pipe.stage("collect", seen.append)
        pipe.start()
        with pytest.raises(ValueError) as info:
            pipe.join(10)
    assert failed_stage(info.value) == "explode"
    assert "(raised in the pipeline stage 'explode')" in info.value.__notes__
    assert not pipe.running and seen == list(range(len(seen))) and len(seen) <= 5  # nothing after the failure


def test_gpu_out_of_memory_in_a_backend(tmp_path: Path) -> None:
    """The torch backend turns an out-of-memory error into one line (mocked: no GPU is needed)."""
    from facepaint.engine.backends.spec import ModelSpec, TensorSpec, save_weights
    from facepaint.engine.backends.torch import TorchBackend
    from facepaint.engine.errors import BackendUnavailable

    class Greedy(torch.nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def greedy() -> torch.nn.Module:
        return Greedy(3, 3, 1)

    spec = ModelSpec("greedy", {}, (TensorSpec("image", (1, 3, 8, 8)),), ("out",))
    weights = save_weights(greedy(), tmp_path / "g.safetensors", spec)
    with TorchBackend(architectures={"greedy": greedy}) as backend:
        backend.load(weights)
        with pytest.raises(BackendUnavailable, match="cpu ran out of memory running 'greedy'") as info:
            backend.infer({"image": torch.zeros(1, 3, 8, 8)})
    assert "\n" not in str(info.value) and "run on the CPU" in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_gpu_out_of_memory_in_a_backend(tmp_path: Path) -> None:
    """A module that asks the GPU for 1 TiB: the real CUDA error becomes the same one line."""
    from facepaint.engine.backends.base import BackendOptions
    from facepaint.engine.backends.spec import ModelSpec, TensorSpec, save_weights
    from facepaint.engine.backends.torch import TorchBackend
    from facepaint.engine.errors import BackendUnavailable

    class Huge(torch.nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.empty(2**38, device=x.device).sum()  # 1 TiB of float32

    def huge() -> torch.nn.Module:
        return Huge(3, 3, 1)

    spec = ModelSpec("huge", {}, (TensorSpec("image", (1, 3, 8, 8)),), ("out",))
    weights = save_weights(huge(), tmp_path / "h.safetensors", spec)
    with TorchBackend(BackendOptions(device="cuda"), architectures={"huge": huge}) as backend:
        backend.load(weights)
        with pytest.raises(BackendUnavailable, match=r"cuda ran out of memory running 'huge', [\d.]+ of [\d.]+ GiB"):
            backend.infer({"image": torch.zeros(1, 3, 8, 8)})


class FailingTracker:
    """The real tracker for the portrait (image mode); raises on the first camera frame (video mode)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> Any:
        if timestamp_ms is not None:
            raise ZeroDivisionError("division by zero in a landmark filter")
        return self.real.track(image, timestamp_ms)

    def reset(self) -> None:
        self.real.reset()

    def close(self) -> None:
        self.real.close()


def test_exception_inside_one_live_stage(inputs: Any, run_cli: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = session.open_tracker
    monkeypatch.setattr(session, "open_tracker", lambda config, live: FailingTracker(real_open(config, live=live)))
    rec = tmp_path / "rec.mp4"
    result = run_cli("--source", inputs.portrait_file(), "--cam", inputs.driving_clip(), "--loop", "--no-vcam",
                     "--output", rec, "--duration", "10")
    errors = [line for line in result.lines if "internal error" in line]
    assert result.code == 1 and "Traceback" not in result.err and len(errors) == 1, result.err
    assert "internal error in the 'track' stage: ZeroDivisionError: division by zero" in errors[0]
    assert not list(tmp_path.glob(".rec.mp4.*"))  # capture, infer and the recorder stopped; no partial file
    assert _stage_threads() == []
