"""Run a command with every cluster held open once it has started, until a signal ends the wait.

``python tests/held_open.py -m <package> run FLOW ...`` or ``python tests/held_open.py prefect run -p FILE ...``.
The interrupt tests use it to send their signal at a known moment (the cluster is up,
its session registered, the flow's first work about to start) instead of racing a run
that may finish first, or landing in the middle of the dask client's own machinery.
"""

from __future__ import annotations

import runpy
import sys
import time

from {{ cookiecutter.package_name }}.plumbing import session

HELD = "held-open: cluster is up"
HOLD_SECONDS = 120  # ended by the test's signal long before; only a bound on a forgotten run

_open = session.ClusterSession.open


def open_and_hold(self: session.ClusterSession):
    client = _open(self)
    print(HELD, flush=True)
    time.sleep(HOLD_SECONDS)
    return client


session.ClusterSession.open = open_and_hold

if __name__ == "__main__":
    if sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        from prefect.cli import cli

        sys.argv = sys.argv[1:]
        cli()
