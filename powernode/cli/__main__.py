"""``python -m powernode.cli``: the ``powernode`` command without the console script."""

import sys

from powernode.cli import main

if __name__ == "__main__":
    sys.exit(main())
