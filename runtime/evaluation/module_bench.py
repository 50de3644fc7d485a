"""Per-module speed of the neural stages at batch 1: each backend this machine can run, same inputs.

The rows are (model, runner): ``torch cpu fp32`` and ``onnxruntime cpu`` everywhere, and where
torch sees a GPU ``torch cuda fp16`` (eager) and ``torch cuda fp16 graph`` (the same module
replayed from a captured CUDA graph). Each runner is warmed up, then timed over ``runs`` calls
with the device synchronised per call, so a figure is one frame's latency, not a pipelined rate.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from facepaint.compile.config import CompileConfig
from facepaint.compile.onnx import example_inputs, export_model
from facepaint.engine.backends.base import BackendOptions
from facepaint.engine.backends.onnx import OnnxBackend
from facepaint.engine.backends.spec import read_spec
from facepaint.engine.backends.torch import TorchBackend
from facepaint.engine.errors import ModelError
from facepaint.engine.neural.model_files import STAGE_MODELS, weights_file


@dataclass(frozen=True)
class ModuleTiming:
    """One (model, runner) row: milliseconds per call at batch 1."""

    model: str
    runner: str
    p50_ms: float
    p90_ms: float
    runs: int

    def line(self) -> str:
        """A row of the printed table."""
        return f"{self.model:22s} {self.runner:26s} {self.p50_ms:8.2f} {self.p90_ms:8.2f}"


def _time(call: Callable[[], object], runs: int, warm_up: int, cuda: bool) -> tuple[float, float]:
    """(p50, p90) milliseconds of ``call``."""
    for _ in range(warm_up):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        if cuda:
            torch.cuda.synchronize()
        times.append(1000.0 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def _runners(stem: str, onnx_dir: Path) -> dict[str, Callable[[], object]]:
    """name -> a call running ``stem`` once on that runner (backends stay open for the process)."""
    source = weights_file(stem, None)
    inputs = example_inputs(read_spec(source))
    cpu = TorchBackend(BackendOptions(device="cpu", precision="fp32"))
    cpu.load(source)
    export_model(source, onnx_dir / f"{stem}.onnx", CompileConfig(), check=False)
    ort = OnnxBackend(BackendOptions(device="cpu"))
    ort.load(onnx_dir / f"{stem}.onnx")
    runners: dict[str, Callable[[], object]] = {
        "torch cpu fp32": lambda: cpu.infer(inputs),
        "onnxruntime cpu": lambda: ort.infer(inputs),
    }
    if torch.cuda.is_available():
        runners.update(_cuda_runners(source, inputs))
    return runners


def _cuda_runners(source: Path, inputs: dict[str, torch.Tensor]) -> dict[str, Callable[[], object]]:
    """Eager fp16 and CUDA-graph fp16 runners of ``source`` on the first GPU."""
    from facepaint.engine.neural.device_ops import GraphedModule

    gpu = TorchBackend(BackendOptions(device="cuda", precision="fp16"))
    gpu.load(source)
    module = gpu.module
    if module is None:
        raise ModelError(f"{source}: the torch backend loaded no module on the GPU")
    args = [t.to("cuda", torch.float16 if t.is_floating_point() else t.dtype) for t in inputs.values()]
    graphed = GraphedModule(module, *args)

    def eager() -> object:
        with torch.inference_mode():
            return module(*args)

    return {"torch cuda fp16": eager, "torch cuda fp16 graph": lambda: graphed(*args)}


def bench_modules(runs: int = 50, warm_up: int = 5, threads: int | None = None,
                  stems: tuple[str, ...] = STAGE_MODELS) -> list[ModuleTiming]:
    """Time every shipped stage model on every runner this machine has (``threads``: torch's CPU
    threads; onnxruntime keeps its default, one per core)."""
    rows = []
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        for stem in stems:
            for name, call in _runners(stem, Path(tmp)).items():
                p50, p90 = _time(call, runs, warm_up, cuda="cuda" in name)
                rows.append(ModuleTiming(stem, name, p50, p90, runs))
    return rows
