"""``python -m playground.evaluate humaneval ...``; see ``cli.py``."""

import sys

from playground.evaluate.cli import main

sys.exit(main())
