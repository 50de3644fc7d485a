"""bench/modules.py's library: every runner this machine has gives a row (figures not judged)."""

from __future__ import annotations

import pytest
import torch

from facepaint.engine.neural.model_files import MIXER
from facepaint.runtime.evaluation.module_bench import bench_modules

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_every_runner_of_this_machine_gives_a_row() -> None:
    rows = bench_modules(runs=2, warm_up=1, stems=(MIXER,))
    runners = ["torch cpu fp32", "onnxruntime cpu"]
    if torch.cuda.is_available():
        runners += ["torch cuda fp16", "torch cuda fp16 graph"]
    assert [(r.model, r.runner) for r in rows] == [(MIXER, name) for name in runners]
    assert all(0 < r.p50_ms <= r.p90_ms and r.runs == 2 for r in rows)
