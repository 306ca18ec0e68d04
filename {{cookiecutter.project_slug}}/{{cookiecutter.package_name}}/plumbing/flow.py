"""What a flow module builds with: ``cluster_flow``, ``DaskCluster`` and the retry policy.

The two ways Coiled's guide computes on a cluster are both here, fixed. Its LocalExecutor
flow builds the flow inside ``with coiled.Cluster(...)``, which closes the cluster before
``flow.run()`` starts, so dask silently computes on local threads: ``DaskCluster`` is a
Prefect resource instead, which starts its cluster when the run reaches it (never at
import, so ``prefect run -p`` works), hands its client to the tasks inside its ``with``
block, and closes it after them. Its DaskExecutor flow passes ``cluster_class`` to
Prefect's ``DaskExecutor``, which starts a cluster for every pass ``flow.run`` makes to
retry a task (minutes each on Coiled): ``ClusterDaskExecutor`` starts the run's cluster
with the first task of the run and keeps it for the whole run. Both take the cluster the
run's plan chose (``plan.current_plan``), and neither starts one when no task of the run
needs it, its results having been restored (``results.py``).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import prefect
from prefect import resource_manager
from prefect.engine.state import Failed, Retrying, State
from prefect.executors import DaskExecutor

from ..settings import TASK_RETRIES
from .plan import current_plan, setting
from .results import UNUSED_KEY
from .run import ATTEMPTS, CANNOT_START, EXIT_FAILED, ClusterFlow, exit_on_refusal, recorded_when_finished
from .session import ClusterSession, close_when_finished, stop_if_scheduler_lost

# How often the executor looks whether its futures are done: from at once to every 10 ms. Each
# look is one future's state (until it is done): Prefect waits once per mapped task, so the
# longest pause is what a run waits beyond its work, per mapped task (100 ms cost 0.3 s a run).
WAIT_FIRST_SECONDS = 0.001
WAIT_MOST_SECONDS = 0.01
# OSErrors that no retry mends: the file is not there, or not allowed, or the disk is full.
LASTING_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOSPC}


def cluster_flow(name: str, *, every_task_on_cluster: bool = False) -> ClusterFlow:
    """A flow whose clusters are closed however its run ends, with one summary line per run, every
    run recorded in the run history and alerted (by ``ClusterFlow.run``, or for a run an agent
    starts, by its state handler once the run finishes).

    With ``every_task_on_cluster`` Prefect's ``DaskExecutor`` submits every task run to
    the cluster, which starts when the run starts and serves every retry pass. Without
    it tasks run in the flow's process, and those that need a cluster take a client
    from ``with DaskCluster() as client:``.
    """
    flow = ClusterFlow(name, state_handlers=[close_when_finished, recorded_when_finished])
    if every_task_on_cluster:
        flow.executor = ClusterDaskExecutor()
    return flow


def open_session(session: ClusterSession) -> Any:
    """Start the session's cluster (or hand back its client); out of reach or of other versions,
    its lines and exit 1 (Prefect would show the error as a traceback of its own)."""
    with exit_on_refusal(*CANNOT_START, code=EXIT_FAILED):
        return session.open()


@resource_manager(name="dask_cluster")
class DaskCluster:
    """A cluster that lives exactly as long as the tasks inside its ``with`` block."""

    def __init__(self) -> None:
        self.session = ClusterSession(current_plan(), prefect.context.get("logger"))

    def setup(self) -> Any:
        """The cluster's client; no cluster, and None, when no task of the run takes it (all restored)."""
        if prefect.context.get("task_slug") in prefect.context.get(UNUSED_KEY, ()):
            prefect.context.get("logger").info("no cluster started: every task that uses it was restored")
            return None
        return open_session(self.session)

    def cleanup(self, client: Any) -> None:
        self.session.close()


class ClusterDaskExecutor(DaskExecutor):
    """A ``DaskExecutor`` on the run's cluster, one cluster per flow run, closed when the run ends
    (or at once, when an exception, Ctrl-C included, escapes a pass).

    The cluster starts with the first task submitted, not with the pass: a run whose
    tasks were all restored, or need not run, submits none and starts no cluster.
    """

    def __init__(self) -> None:
        # The worker-status watcher only warns about a duplicate scheduler plugin here.
        super().__init__(watch_worker_status=False)
        self.session: ClusterSession | None = None
        self.started = False  # inside ``start``: the only place a cluster may be opened

    @contextmanager
    def start(self) -> Iterator[None]:
        plan = current_plan()
        if self.session is None or self.session.plan is not plan or not self.session.is_open:
            self.session = ClusterSession(plan, self.logger)
        session = self.session
        self.started = True
        try:
            try:
                yield
            finally:
                if self.client is not None:
                    self._post_start_yield()
        except BaseException:
            session.close()
            raise
        finally:
            self.started = False
            self.client = None

    def open(self) -> None:
        """Start the pass's cluster (or take the run's open one) for its first task."""
        if not self.started or self.session is None:
            raise ValueError("This executor has not been started.")
        self.client = open_session(self.session)
        self._pre_start_yield()

    def submit(self, fn: Callable, *args: Any, extra_context: dict | None = None, **kwargs: Any) -> Any:
        if self.client is None:
            self.open()
        stop_if_scheduler_lost()  # what is submitted meanwhile would wait out the client's reconnection
        try:
            return super().submit(fn, *args, extra_context=extra_context, **kwargs)
        except Exception:
            stop_if_scheduler_lost()
            raise

    def wait(self, futures: Any) -> Any:
        """The pass's states, waited for here in short sleeps, where a signal interrupts this code and
        not distributed's: cut short, ``client.gather`` leaves waits behind that fail later ("Task
        exception was never retrieved"). A scheduler that went away ends the run in one line."""
        if self.client is None:  # nothing was submitted in this pass: every state is final already
            return futures
        from distributed import futures_of

        stop_if_scheduler_lost()
        try:
            pending, first = futures_of(futures), 0
            pause = WAIT_FIRST_SECONDS
            while first < len(pending):  # each future is looked at until it is done, then never again
                if pending[first].done():
                    first += 1
                    continue
                time.sleep(pause)  # a signal's handler raises here
                pause = min(2 * pause, WAIT_MOST_SECONDS)
            return super().wait(futures)  # every result is there: the gather takes no time
        except Exception:
            stop_if_scheduler_lost()
            raise


def passing(error: object) -> bool:
    """Whether a retry could mend ``error``: a lost worker or connection, a timeout, a storage
    service's hiccup. Bad data, a bug (``TypeError``, ``ValueError``), a missing file or a
    closed client fail the same way every time, so they fail at once."""
    if type(error).__name__ == "KilledWorker":  # distributed.scheduler's: its worker died under it
        return True
    if not isinstance(error, OSError):
        return False
    return error.errno not in LASTING_ERRNOS and not isinstance(
        error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
    )


def retry_only_what_passes(task: Any, old_state: State, new_state: State) -> State:
    """Task state handler: a failure is retried only if it could pass, and says how many times it ran."""
    if isinstance(new_state, Failed):
        new_state.context[ATTEMPTS] = prefect.context.get("task_run_count", 1)
    if isinstance(new_state, Retrying):
        stop_if_scheduler_lost()  # no retry against a scheduler that went away: the run ends, in one line
    if isinstance(new_state, Retrying) and isinstance(old_state, Failed) and not passing(old_state.result):
        prefect.context.get("logger").info(
            "Task '%s': not retried: %s fails the same way on every attempt", task.name, type(old_state.result).__name__
        )
        return old_state
    return new_state


class BadInputInOneLine(logging.Filter):
    """Prefect logs every exception a task raises with its traceback. A ``ValueError`` is how
    this project's flows refuse bad input (bad data, a value that cannot work, as ``validate``
    does), and its message says all a user can act on: it is logged in one line. Every other
    error, a bug's above all, keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValueError):
            record.msg, record.args = f"{record.getMessage()} {type(error).__name__}: {error}", ()
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("prefect.TaskRunner").addFilter(BadInputInOneLine())


def cluster_task_retries() -> dict[str, object]:
    """Task keyword arguments for retrying tasks that compute on a cluster: ``max_retries``,
    ``retry_delay`` and the handler that retries only failures that could pass (``passing``).

    Flow modules call this when they are imported. A refused delay raises SettingError,
    which the command line reports as it is; while ``prefect run -p`` loads a flow file
    it is one line and exit 2 instead of Prefect's traceback.
    """
    if prefect.context.get("loading_flow"):
        with exit_on_refusal():
            seconds = setting("RETRY_DELAY_SECONDS")
    else:
        seconds = setting("RETRY_DELAY_SECONDS")
    return {
        "max_retries": TASK_RETRIES,
        "retry_delay": timedelta(seconds=seconds),
        "state_handlers": [retry_only_what_passes],
    }
