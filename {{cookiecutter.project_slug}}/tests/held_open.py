"""Run a command held at one moment of its cluster's life, until a test's signal arrives.

``HELD_OPEN_AT=before|start|compute|close|kept|mapped|weakref|del python tests/held_open.py -m <package> run FLOW ...``
(or ``... held_open.py prefect run -p FILE ...``). The interrupt tests use it to send
their signal at a known moment instead of racing a run that may finish first:

- ``before``: the run has begun and is about to start its cluster;
- ``start``: the cluster's processes are up but ``ClusterSpec.start`` has not returned,
  so the session does not know the cluster yet (signals are held pending there);
- ``compute``: the cluster is up, its session registered, the flow's work about to start;
- ``close``: the session is closing the cluster; the hold ends after two signals, so an
  impatient second one is tested too;
- ``weakref``, ``del``: the run is planned, no cluster exists, and the main thread is in a
  weakref callback or a ``__del__`` (as at the end of every import), where Python drops
  any exception a signal's handler raises;
- ``kept``: a kept result has just been written whole (``results.py``), the run not over;
- ``mapped``: a flow with every task on the cluster has submitted 200 task runs, which its
  workers are running.

Each prints ``held-open: <moment>`` when it is reached (``close`` once per signal it
waits for), and the test sends one signal per such line.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from {{ cookiecutter.package_name }}.plumbing import backends, flow, results, run, session, signals

HELD = "held-open: "
MOMENT = os.environ.get("HELD_OPEN_AT", "compute")
HOLD_SECONDS = 120  # ended by the test's signal long before; only a bound on a forgotten run
SIGNALS_AT_CLOSE = 2


def hold(until: Callable[[], bool]) -> None:
    print(HELD + MOMENT, flush=True)
    deadline = time.monotonic() + HOLD_SECONDS
    while not until() and time.monotonic() < deadline:
        time.sleep(0.02)


def pending() -> bool:
    return bool(signals.deferred or signal.sigpending() & set(signals.ENDING))


_start = backends.ClusterSpec.start
_open = session.ClusterSession.open
_release = session.ClusterSession._release
_write = results.ResultStore.write


def start_and_hold(self: backends.ClusterSpec) -> Any:
    cluster = _start(self)
    hold(until=pending)
    return cluster


def hold_and_open(self: session.ClusterSession) -> Any:
    hold(until=lambda: False)  # the signal ends it
    return _open(self)


def open_and_hold(self: session.ClusterSession) -> Any:
    client = _open(self)
    hold(until=lambda: False)  # the signal ends it
    return client


def hold_and_release(self: session.ClusterSession, client: Any, cluster: Any) -> None:
    if cluster is not None:  # not a second close of a session already closed
        for count in range(1, SIGNALS_AT_CLOSE + 1):  # one line per signal: the kernel merges a pending repeat
            hold(until=lambda wanted=count: len(signals.deferred) >= wanted)
    _release(self, client, cluster)


_plan_run = run.plan_run


class _Ending:
    """An object whose end holds the run inside its ``__del__``."""

    def __del__(self) -> None:
        hold(until=lambda: False)  # the signal's exception ends it, and Python drops it


class _Referenced:
    """An object whose end runs a weakref callback."""


def plan_then_hold_where_exceptions_are_dropped(*args: Any, **kwargs: Any) -> Any:
    plan = _plan_run(*args, **kwargs)
    if MOMENT == "del":
        _Ending()
    else:
        target = _Referenced()
        reference = weakref.ref(target, lambda _: hold(until=lambda: False))
        del target
        assert reference() is None
    return plan


def write_and_hold(self: results.ResultStore, path: str, data: bytes) -> None:
    _write(self, path, data)
    hold(until=lambda: False)  # the signal ends it


_submit = flow.ClusterDaskExecutor.submit
SUBMITTED_BEFORE_THE_HOLD = 200


def submit_then_hold(self: flow.ClusterDaskExecutor, *args: Any, **kwargs: Any) -> Any:
    future = _submit(self, *args, **kwargs)
    self.submitted = getattr(self, "submitted", 0) + 1
    if self.submitted == SUBMITTED_BEFORE_THE_HOLD:
        hold(until=lambda: False)  # the signal ends it; the workers go on with what they were given
    return future


if MOMENT == "mapped":
    flow.ClusterDaskExecutor.submit = submit_then_hold
elif MOMENT in ("weakref", "del"):
    run.plan_run = plan_then_hold_where_exceptions_are_dropped
elif MOMENT == "before":
    session.ClusterSession.open = hold_and_open
elif MOMENT == "start":
    backends.ClusterSpec.start = start_and_hold
elif MOMENT == "compute":
    session.ClusterSession.open = open_and_hold
elif MOMENT == "kept":
    results.ResultStore.write = write_and_hold
else:
    session.ClusterSession._release = hold_and_release

if __name__ == "__main__":
    if sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        from prefect.cli import cli

        sys.argv = sys.argv[1:]
        cli()
