"""``python -m playground.attribution``: see ``_cli``."""

import sys

from playground.attribution._cli import main

if __name__ == "__main__":
    sys.exit(main())
