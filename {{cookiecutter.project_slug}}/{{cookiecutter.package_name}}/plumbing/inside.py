"""A look inside a run: Dask's performance report, and at a terminal the dashboard link and a progress bar.

``run --report PATH`` writes the HTML performance report Dask makes of a cluster's work
(task stream, worker profile, bandwidth) for both kinds of flow, from the cluster
session: it starts when the run's cluster is up and is written when the session closes,
so it covers every retry pass of a run. Prefect's own ``DaskExecutor(performance_report_path=...)``
wraps one executor pass only (each retry pass would overwrite the last), and knows
nothing of clusters held as a resource.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from . import signals
from .choices import REPORT

# How long writing the report may wait for the scheduler to assemble it.
REPORT_TIMEOUT_SECONDS = 60
# A computation still running after this long gets a progress bar (at a terminal).
PROGRESS_AFTER_SECONDS = 2


def checked_report_path(path: Path | None) -> Path | None:
    """The report's path, once it is known to be writable without replacing anything; ValueError otherwise.

    Checked before any cluster starts: a report that cannot be written should not cost a run.
    """
    if path is None:
        return None
    if path.exists():
        raise ValueError(f"--report {path}: exists; choose a new file (a report never replaces one)")
    if not path.parent.is_dir():
        raise ValueError(f"--report {path}: the folder {path.parent} does not exist")
    return path


def at_terminal() -> bool:
    """Whether a person watches the output; logs and tests get none of the terminal extras."""
    return sys.stdout.isatty()


class PerformanceReport:
    """Dask's performance report of everything a client's cluster does from ``start`` to ``write``."""

    def __init__(self, path: Path, label: str) -> None:
        from distributed import performance_report

        self.path = path
        self.label = label  # the report's "calling code": which run it shows
        self.report = performance_report(filename=str(path))

    @classmethod
    def chosen(cls, label: str) -> PerformanceReport | None:
        """The report ``run --report`` asked for, if any."""
        return None if REPORT.value is None else cls(REPORT.value, label)

    def start(self, client: Any) -> None:
        with client.as_current():  # the report finds its client as the current one
            client.sync(self.report.__aenter__)

    def write(self, client: Any, logger: logging.Logger) -> None:
        """Write the report, unless the run was interrupted (a Ctrl-C wants the cluster closed, now)."""
        if signals.received:
            logger.warning("performance report not written: the run was interrupted")
            return
        try:
            with client.as_current():
                client.sync(
                    self.report.__aexit__, None, None, None, code=self.label, callback_timeout=REPORT_TIMEOUT_SECONDS
                )
        except Exception as error:  # a report must never stand between the user and a closed cluster
            logger.warning("performance report not written to %s: %s: %s", self.path, type(error).__name__, error)
            return
        logger.info("performance report written to %s", self.path)


_dashboard_shown = False


def show_dashboard(link: str) -> None:
    """At a terminal, print the dashboard link once per process, before the work starts."""
    global _dashboard_shown
    if at_terminal() and not _dashboard_shown and link:
        _dashboard_shown = True
        print(f"dashboard: {link}", flush=True)


def compute_with_progress(client: Any, collection: Any) -> Any:
    """Compute a Dask collection on ``client``'s cluster and return its result.

    At a terminal, a computation still running after ``PROGRESS_AFTER_SECONDS`` shows
    Dask's progress bar until it is done.
    """
    from distributed import TimeoutError as StillRunning  # asyncio's, not the builtin, before Python 3.11
    from distributed import progress, wait

    future = client.compute(collection)
    if at_terminal():
        with client.as_current():  # both find their client as the current one
            try:
                wait(future, timeout=PROGRESS_AFTER_SECONDS)
            except StillRunning:
                progress(future, notebook=False)
                print(flush=True)  # the bar ends without a newline
    return future.result()
