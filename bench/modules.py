"""Per-module milliseconds of the neural stages at batch 1 on every backend this machine runs.

    python bench/modules.py [--runs 50] [--threads N] [--json modules.json]

Rows: torch CPU fp32 and onnxruntime CPU here; on a CUDA machine also torch CUDA fp16 eager and
the same replayed from a CUDA graph (``facepaint.runtime.evaluation.module_bench``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import torch

from facepaint.runtime.evaluation.module_bench import bench_modules


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args()
    rows = bench_modules(runs=args.runs, threads=args.threads)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {device}")
    print(f"{'model':22s} {'runner':26s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for row in rows:
        print(row.line())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"device": device, "rows": [dataclasses.asdict(r) for r in rows]}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
