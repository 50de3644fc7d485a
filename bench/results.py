"""Write docs/RESULTS.md: the quality sweep over the shared media and the speed headline.

    python bench/results.py                      # ~10-20 min on 2 cores
    python bench/results.py --max-frames 30 --no-bench --out /tmp/quick.md

The work is done by ``facepaint.runtime.evaluation.results``; this script only supplies the
repository's default paths.
"""

import sys
from pathlib import Path

from facepaint.runtime.evaluation.results import main

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    defaults = ["--media", str(ROOT.parent / "shared" / "media"), "--out", str(ROOT / "docs" / "RESULTS.md")]
    sys.exit(main(defaults + sys.argv[1:]))
