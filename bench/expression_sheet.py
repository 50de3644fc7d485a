"""Write docs/expressions.png: several portraits, each with every expression at two strengths.

One row per portrait: the source, then each expression at ``--strengths`` (0.6 and 1.0 by
default). The same rendering as ``facepaint-live --source P --expressions all --output sheet.png``.

    python bench/expression_sheet.py
    python bench/expression_sheet.py --portraits obama,lp_s42 --out /tmp/sheet.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facepaint.engine.expression import EXPRESSIONS
from facepaint.runtime.config import build_app_config
from facepaint.runtime.expression import render_sheet
from facepaint.runtime.session import Session, measure_with

TILE_SCALE = 0.45  # tiles half the CLI sheet's size: 10 rows x 9 tiles stay one page
# The page is stored as a 256-colour PNG: about 1.5 MB instead of 6 MB in the repository.
PALETTE = 256

ROOT = Path(__file__).resolve().parents[1]


def portrait_row(path: Path, strengths: Sequence[float]) -> np.ndarray:
    """The source and each expression, one row per strength."""
    config = build_app_config({"source": str(path), "expressions": list(EXPRESSIONS), "output": "unused.png"})
    with Session(config, live=False) as session:
        rows = [render_sheet(session.engine, measure_with(session.tracker), config.engine.expression, EXPRESSIONS, (s,),
                             columns=99) for s in strengths]
    return np.concatenate(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    p.add_argument("--portraits", default="obama,biden2,lp_s42,lp_s12,lp_s10")
    p.add_argument("--strengths", default="0.6,1.0")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "expressions.png")
    args = p.parse_args(argv)
    strengths = [float(s) for s in args.strengths.split(",")]
    rows = [portrait_row(args.media / "portraits" / f"{name}.jpg", strengths) for name in args.portraits.split(",")]
    width = max(r.shape[1] for r in rows)
    page = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    page = cv2.resize(page, None, fx=TILE_SCALE, fy=TILE_SCALE, interpolation=cv2.INTER_AREA)
    from PIL import Image

    Image.fromarray(page).quantize(PALETTE, dither=Image.Dither.FLOYDSTEINBERG).save(args.out, optimize=True)
    print(f"wrote {args.out} ({page.shape[1]}x{page.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
