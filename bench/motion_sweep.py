"""Fast motion sweep: how many portrait x driving pairs meet the motion targets (no encoding).

    python bench/motion_sweep.py                                    # 42 pairs, 150 frames each
    python bench/motion_sweep.py --set transformer.mouth=0.85 --set transformer.ring_follow=0.3
    python bench/motion_sweep.py --pairs obama:lp_d12,lp_s10:lp_d3 --rows

The work is done by ``facepaint.runtime.evaluation.sweep``; this script only supplies the default
media folder.
"""

import sys
from pathlib import Path

from facepaint.runtime.evaluation.sweep import main

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"

if __name__ == "__main__":
    sys.exit(main(["--media", str(MEDIA)] + sys.argv[1:]))
