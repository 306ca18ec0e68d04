"""Entry point for ``python -m <package>``."""

import sys

from .plumbing.cli import main

sys.exit(main())
