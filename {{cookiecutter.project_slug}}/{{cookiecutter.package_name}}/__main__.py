"""Entry point for ``python -m <package>``.

The signal handlers come first, before Prefect and Dask load (a second or more on a busy
machine): from then on, a SIGTERM or SIGHUP ends the process with one line and 128 + the
signal, as a Ctrl-C does, instead of killing it without a word; once the command has
its outcome, they are ignored until the process has exited with it. ``signals.py`` needs only
the standard library, so it is loaded here on its own, under its own name in the package.
"""

import importlib.util
import sys
from pathlib import Path


def signals_first():  # noqa: ANN201 - the module just loaded
    name = f"{__package__}.plumbing.signals"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("plumbing") / "signals.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    sys.modules[name].install()
    return sys.modules[name]


signals = signals_first()
signals.settle_at_outcome = True
try:
    from .plumbing.cli import main

    status = main()
    signals.settle()  # the outcome is decided: a signal now must not turn it into a silent -15
except KeyboardInterrupt as interrupt:
    # No run reported it: it came while Prefect and Dask loaded, or while a run was planned.
    if not signals.reported:
        print(f"interrupted by {signals.signal_name(interrupt)}; nothing had started", file=sys.stderr)
        signals.reported = True
    status = signals.exit_status(interrupt)
sys.exit(status)
