"""Cross-reenactment, geometric against the neural stages: identity, motion r and jaw amplitude.

    python bench/neural_cross.py [--max-frames 120] [--json cross.json]

Each pair is rendered and judged by ``facepaint-live eval``'s library (the same judges reused
across settings): identity AED (dlib descriptor, median; issue 10 allows neural <= geometric +
0.03), jaw / blink / yaw / pitch / roll r (no worse) and jaw amplitude (closer to 1 = closer to
the driver's). Settings: geometric, ``--reenactor neural``, all three stages neural.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facepaint.runtime.evaluation.geometry_judge import GeometryJudge
from facepaint.runtime.evaluation.identity import IdentityJudge
from facepaint.runtime.evaluation.quality import EvalConfig, evaluate

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
PAIRS = (("portraits/obama.jpg", "driving/lp_d10.mp4"), ("portraits/lp_s42.jpg", "driving/lp_d12.mp4"),
         ("portraits/biden2.jpg", "driving/lp_d3.mp4"), ("portraits/lp_s12.jpg", "extra/vr_1.mp4"))
SETTINGS = {"geometric": {}, "neural reenactor": {"reenactor": {"kind": "neural"}},
            "all neural": {"transformer": {"kind": "neural"}, "reenactor": {"kind": "neural"},
                           "mixer": {"kind": "neural"}}}


def figures(report: dict) -> dict[str, float]:
    """The issue's cross-reenactment figures from one eval report."""
    m = report["metrics"]
    out = {"aed": m["identity"]["aed_median"]}
    for name in ("jaw", "blink"):
        out[f"{name}_r"] = m["expression"]["signals"][name]["r"]
    out["jaw_amplitude"] = m["expression"]["signals"]["jaw"]["amplitude"]
    for angle in ("yaw", "pitch", "roll"):
        out[f"{angle}_r"] = m["pose"][angle]["r"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-frames", type=int, default=120)
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    identity, geometry = IdentityJudge(), GeometryJudge()
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for source, driving in PAIRS:
        pair = f"{Path(source).stem} x {Path(driving).stem}"
        for name, engine in SETTINGS.items():
            config = EvalConfig(driving=str(MEDIA / driving), source=str(MEDIA / source), max_frames=args.max_frames)
            rows.setdefault(pair, {})[name] = figures(evaluate(config, None, identity, geometry, engine))
            print(pair, name, " ".join(f"{k} {v:.3f}" for k, v in rows[pair][name].items()), flush=True)
    keys = list(next(iter(next(iter(rows.values())).values())))
    print("\nmean over pairs")
    for name in SETTINGS:
        means = {k: sum(r[name][k] for r in rows.values()) / len(rows) for k in keys}
        print(f"{name:18s}", " ".join(f"{k} {v:.3f}" for k, v in means.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
