"""Entry point for ``python -m <package>``."""

import sys

try:
    from .plumbing.cli import main
except KeyboardInterrupt:  # a Ctrl-C while Prefect and Dask load: one line, not their traceback
    print("interrupted by SIGINT; nothing had started", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
