"""``python -m facepaint.compile``: the same as ``facepaint-live compile``."""

import sys

from facepaint.compile.cli import main

sys.exit(main())
