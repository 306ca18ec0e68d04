"""Entry point for ``python -m <package>``."""

import signal
import sys


def interrupted_before_any_run(interrupt: KeyboardInterrupt) -> int:
    """A signal that no run reported (it came while Prefect and Dask load, or while a run was
    planned): one line, not their traceback, and 128 + the signal."""
    signum = getattr(interrupt, "signum", signal.SIGINT)
    signals = sys.modules.get(f"{__package__}.plumbing.signals")
    if not getattr(signals, "reported", False):
        print(f"interrupted by {signal.Signals(signum).name}; nothing had started", file=sys.stderr)
    return 128 + signum


try:
    from .plumbing.cli import main

    status = main()
except KeyboardInterrupt as interrupt:
    status = interrupted_before_any_run(interrupt)
sys.exit(status)
