"""The figures of docs/EXPRESSION.md: each expression on each portrait, re-tracked, and its identity.

Per portrait and expression: smile (mean mouthSmile), jawOpen and browInnerUp read by MediaPipe
(image mode) on the edited still, and dlib's descriptor distance to the source. The edits are
made as the CLI makes them (each edit checked by re-tracking it).

    python bench/expression_numbers.py                                   # strength 1.0
    python bench/expression_numbers.py --strength 0.6 --portraits obama,lp_s42
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facepaint.engine.expression import EXPRESSIONS, ExpressionConfig
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation.identity import IdentityJudge
from facepaint.runtime.session import Session, measure_with

ROOT = Path(__file__).resolve().parents[1]


def figures(face) -> str:
    smile = np.mean([face.blendshape("mouthSmileLeft"), face.blendshape("mouthSmileRight")])
    return f"smile {smile:.2f} jaw {face.blendshape('jawOpen'):.2f} inner brow {face.blendshape('browInnerUp'):.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    p.add_argument("--portraits", default="obama,biden2,lp_s42,lp_s12")
    p.add_argument("--strength", type=float, default=1.0)
    args = p.parse_args(argv)
    judge = IdentityJudge()
    for name in args.portraits.split(","):
        path = args.media / "portraits" / f"{name}.jpg"
        config = build_app_config({"source": str(path), "expressions": ["happy"], "output": "unused.png"})
        with Session(config, live=False) as session:
            engine, tracker = session.engine, session.tracker
            reference = judge.descriptor(session.portrait.image)
            print(f"{name:8s} source    {figures(session.portrait.face)}")
            for expression in EXPRESSIONS:
                engine.set_expression(ExpressionConfig(expression=expression, strength=args.strength),
                                      measure_with(tracker))
                out = engine.rest()
                found = tracker.track(out, None)
                distance = float(np.linalg.norm(judge.descriptor(out) - reference))
                read = figures(found[0]) if found else "no face"
                print(f"{name:8s} {expression:9s} {read}  identity {distance:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
