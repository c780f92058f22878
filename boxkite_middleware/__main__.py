"""``python -m boxkite_middleware``: the same as the ``boxkite-middleware`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
