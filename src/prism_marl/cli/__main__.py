"""``python -m prism_marl.cli``: the ``prism-marl`` command."""

import sys

from prism_marl.cli import main

if __name__ == "__main__":
    sys.exit(main())
