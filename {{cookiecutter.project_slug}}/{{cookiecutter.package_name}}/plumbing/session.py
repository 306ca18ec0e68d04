"""Open a run's cluster and make sure it is closed, whatever happens; a look inside while it runs.

Cloud clusters cost money while they run, so every cluster this project starts is
recorded here until it is closed, by the first of: the ``DaskCluster`` resource's
cleanup task; the flow's end (``ClusterFlow.run``, on success, failure, Ctrl-C, SIGTERM
or SIGHUP alike); an exit hook, for any other way out of the process. Closing is bounded
in time, so a scheduler that does not answer cannot hold the process forever. Coiled's
idle and no-client timeouts are the last resort for a process killed outright
(SIGKILL). Two exceptions, by choice: a kept Coiled cluster (``run --keep``) is only let
go of, and its idle timeout stops it; a cluster the run attached to by its address is
not the project's: its session closes only its own client.

``run --report PATH`` writes the HTML performance report Dask makes of a cluster's work
(task stream, worker profile, bandwidth), from the session: it starts when the cluster
is up and is written when the session closes, so it covers every retry pass of a run,
for both kinds of flow. Its scripts are inline, so the page shows offline too.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import signals
from .backends import check_cluster_versions
from .coiled_api import stop_command

if TYPE_CHECKING:
    from .plan import RunPlan

# How long the scheduler may take to count its work or assemble the report.
REPORT_TIMEOUT_SECONDS = 60
# How long closing the client, then the cluster, may each wait for an unresponsive scheduler.
CLOSE_TIMEOUT_SECONDS = 20
# A computation still running after this long gets a progress bar (at a terminal).
PROGRESS_AFTER_SECONDS = 2

# Every session opened in this process whose run has not ended: what cleanup needs.
_sessions: list[ClusterSession] = []


class SchedulerLost(RuntimeError):
    """The scheduler of the run's cluster went away mid-run; the message says which."""


# A client still held by its session in these states has lost its scheduler.
LOST = ("connecting", "closing", "closed")


class ClusterSession:
    """One run's cluster and its client."""

    def __init__(self, plan: RunPlan, logger: logging.Logger) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.logger = logger
        self.cluster: Any = None
        self.client: Any = None
        self.began = False  # asked to start: a kept cluster runs on from here, even if cut short
        self.started = False  # a cluster of the project's exists (attached: a client is connected)
        self.checked = False  # its versions are this machine's: only then is any function shipped there
        self.transitions: int | None = None
        self.report: PerformanceReport | None = None
        self.cluster_name: str | None = None  # once started; the run's record names it after it closed
        self.address = str(self.spec.kwargs.get("address", "?"))  # the scheduler's, once connected
        self._quiet: Any = None

    @property
    def is_open(self) -> bool:
        return self.client is not None

    @property
    def scheduler_lost(self) -> bool:
        return self.client is not None and self.client.status in LOST

    def open(self) -> Any:
        """Start the cluster, connect, check versions; returns the client.

        Prefect starts a new pass over the flow for every task retry and re-runs setup
        steps in each pass, so an open session hands back its client: one cluster serves
        every attempt of a run.
        """
        if self.is_open:
            return self.client
        signals.check()  # a signal whose exception Python dropped: no cluster starts after it
        from distributed import Client

        if self not in _sessions:
            _sessions.append(self)
        self.began = True
        try:
            with _without_version_warning():  # the check below says it in the project's words
                if self.spec.attached:
                    from distributed.utils import silence_logging_cmgr

                    # distributed logs a lost connection with tracebacks at INFO; a LocalCluster
                    # quiets it for its life, and so does an attached run.
                    self._quiet = silence_logging_cmgr(logging.WARN)
                    self._quiet.__enter__()
                    self.client = self.spec.start()
                    self.started = True
                else:
                    with signals.held() if self.spec.hold_signals_at_start else nullcontext():
                        self.cluster = self.spec.start()
                        self.started = True
                    self.client = Client(self.cluster, set_as_default=False)
            self.cluster_name = self.name
            self.address = str(self.client.scheduler.address)
            check_cluster_versions(self.client)
            self.checked = True
            if self.plan.report is not None:
                self.report = PerformanceReport(self.plan.report, f"{self.spec.name} on {self.spec.backend} cluster")
                self.report.start(self.client)
        except BaseException:
            self.close()
            raise
        self.logger.info(
            "cluster backend=%s name=%s dashboard=%s", self.spec.backend, self.name, self.client.dashboard_link
        )
        if at_terminal():
            print(f"dashboard: {self.client.dashboard_link}", flush=True)
        return self.client

    @property
    def name(self) -> str:
        """The cluster's name, or the scheduler's address for an attached cluster, which has none of ours."""
        if self.spec.attached:
            return str(self.spec.kwargs["address"])
        return str(getattr(self.cluster, "name", None) or self.spec.kwargs.get("name", "?"))

    def close(self) -> None:
        """Close client and cluster; safe to call twice, and the cluster is closed even if the client fails.

        An impatient second signal waits until the cluster is closed: cut short, closing
        would leave it running (and billing) until its idle timeout.
        """
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        quiet, self._quiet = self._quiet, None
        try:
            with signals.deferral():
                self._release(client, cluster)
        finally:
            if quiet is not None:
                quiet.__exit__(None, None, None)

    def _release(self, client: Any, cluster: Any) -> None:
        """Stop the run's work, then close the cluster and the client, in the order that leaves no noise.

        Work in flight when a run ends (a signal mid-map, a failed task) would go on starting
        on the workers while the cluster closes, and the scheduler would write to a client
        that has hung up: its work is released first, and a local cluster (whose scheduler
        runs in this process) is closed before its client.
        """
        report, self.report = self.report, None
        if client is not None and client.status in LOST:  # nothing to ask of a scheduler that went away
            try:
                with _quiet_reconnection():
                    client.close(timeout=CLOSE_TIMEOUT_SECONDS)
                self.logger.info(
                    "cluster backend=%s name=%s: its scheduler went away; client closed", self.spec.backend, self.name
                )
            finally:
                if cluster is not None:
                    self._close_cluster(cluster)
            return
        try:
            if client is not None:
                if self.checked:  # a function shipped to a scheduler of another Python can kill it
                    _release_work(client, own_workers=not (self.spec.attached or self.spec.kept))
                if report is not None:
                    report.write(client, self.logger)
                if not self.spec.attached and self.checked:  # a shared scheduler counts everyone's work
                    self.transitions = _transition_count(client)
                if cluster is not None and self.spec.backend == "local":
                    cluster, first = None, cluster
                    self._close_cluster(first)
                client.close(timeout=CLOSE_TIMEOUT_SECONDS)
                if self.spec.attached:
                    self.logger.info(
                        "cluster backend=%s name=%s disconnected, left running (this project did not start it)",
                        self.spec.backend,
                        self.name,
                    )
        finally:
            if cluster is not None:
                self._close_cluster(cluster)

    def _close_cluster(self, cluster: Any) -> None:
        name = cluster.name
        close_within(cluster, CLOSE_TIMEOUT_SECONDS)  # of a kept cluster, only this handle
        transitions = "unknown" if self.transitions is None else self.transitions
        if self.spec.kept:
            self.logger.info("%s (transitions=%s)", kept_line(self), transitions)
        else:
            self.logger.info("cluster backend=%s name=%s closed transitions=%s", self.spec.backend, name, transitions)


def _release_work(client: Any, own_workers: bool) -> None:
    """Pause the run's own workers, release every key the client wants, wait until the scheduler has read
    the client's whole stream (a heartbeat queued behind the last submission), then release again.

    A paused worker finishes its running task and starts no queued one; the second release
    takes what was still on its way. The functions are nested, so that cloudpickle ships
    them by value: a scheduler or workers without the project can run them.
    """

    def pause(dask_worker: Any) -> None:
        from distributed.core import Status

        if dask_worker.status == Status.running:
            dask_worker.memory_manager.memory_pause_fraction = False  # its memory monitor would resume it
            dask_worker.status = Status.paused

    def release(client_id: str, dask_scheduler: Any) -> float | None:
        state = dask_scheduler.clients.get(client_id)
        if state is None:
            return None
        keys = [task.key for task in state.wants_what]
        if keys:
            dask_scheduler.client_releases_keys(keys=keys, client=client_id, stimulus_id=f"run-ended-{client_id}")
        return state.last_seen

    def last_seen(client_id: str, dask_scheduler: Any) -> float:
        state = dask_scheduler.clients.get(client_id)
        return state.last_seen if state is not None else float("inf")

    try:
        if own_workers:  # a shared cluster's workers are not the run's to pause
            client.run(pause, on_error="ignore")
        seen = client.run_on_scheduler(release, client.id, callback_timeout=REPORT_TIMEOUT_SECONDS)
        if seen is None:
            return
        client.scheduler_comm.send({"op": "heartbeat-client"})  # behind the run's last submission
        deadline = time.monotonic() + REPORT_TIMEOUT_SECONDS
        while time.monotonic() < deadline and (
            client.run_on_scheduler(last_seen, client.id, callback_timeout=REPORT_TIMEOUT_SECONDS) <= seen
        ):
            time.sleep(0.02)
        client.run_on_scheduler(release, client.id, callback_timeout=REPORT_TIMEOUT_SECONDS)
    except Exception:  # closing comes next either way
        pass


def stop_if_scheduler_lost() -> None:
    """Exit 1 with one line when the scheduler of an open session went away mid-run: its work is lost,
    and retries against a closed client can only fail again (the sessions close on the way out)."""
    for session in list(_sessions):
        if session.scheduler_lost:
            from .run import EXIT_FAILED, exit_on_refusal

            # Until it is closed, its client goes on trying to reconnect, and says so when it gives up.
            logging.getLogger("distributed.client").addFilter(_RECONNECTION_NOISE)
            with exit_on_refusal(SchedulerLost, code=EXIT_FAILED):
                raise SchedulerLost(
                    f"the scheduler at {session.address} went away during the run; its work is lost: "
                    "run again once it is back"
                )


class _ReconnectionNoise(logging.Filter):
    """A client that lost its scheduler logs its reconnection's end as an error: that it gave up, or
    (closed meanwhile) that it was cancelled. The run's one line has said what happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        cancelled = record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
        return not (cancelled or record.getMessage().startswith("Failed to reconnect to scheduler"))


_RECONNECTION_NOISE = _ReconnectionNoise()


@contextmanager
def _quiet_reconnection() -> Iterator[None]:
    logger = logging.getLogger("distributed.client")
    logger.addFilter(_RECONNECTION_NOISE)
    try:
        yield
    finally:
        logger.removeFilter(_RECONNECTION_NOISE)


class _SyncCancelledBeforeItBegan(logging.Filter):
    """``distributed.utils.sync`` interrupted by a signal before its coroutine started: its ``cancel``
    callback fails (``NameError: cannot access free variable 'future'``), which tornado logs with a
    traceback. The interrupt itself goes on as it should; only that record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, NameError):
            return True
        trace = record.exc_info[2]
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        code = trace.tb_frame.f_code if trace is not None else None
        return not (code is not None and code.co_name == "cancel" and "distributed" in code.co_filename)


logging.getLogger("tornado.application").addFilter(_SyncCancelledBeforeItBegan())


@contextmanager
def _without_version_warning() -> Iterator[None]:
    """distributed warns with a table of its own about other versions; check_cluster_versions refuses them."""
    from distributed.versions import VersionMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VersionMismatchWarning)
        yield


def close_within(cluster: Any, seconds: float) -> None:
    """``cluster.close()``, given up on after ``seconds`` with a TimeoutError.

    distributed's clusters take a ``timeout``. ``coiled.Cluster.close`` does not, and it
    waits for Coiled's API: it runs in a thread instead, so an API that does not answer
    cannot hold the process (the caller names the cluster, to be stopped by hand).
    """
    if "timeout" in inspect.signature(cluster.close).parameters:
        cluster.close(timeout=seconds)
        return
    failed: list[BaseException] = []

    def close() -> None:
        try:
            cluster.close()
        except BaseException as error:  # handed to the caller's thread below
            failed.append(error)

    closing = threading.Thread(target=close, name=f"close {cluster.name}", daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        raise TimeoutError(f"no answer to close within {seconds} s")
    if failed:
        raise failed[0]


def _transition_count(client: Any) -> int | None:
    """How many task state changes the scheduler saw: 0 means no work ever reached the cluster."""
    try:
        # ``callback_timeout`` is taken by the client's sync layer, not passed to the function.
        return client.run_on_scheduler(_scheduler_transitions, callback_timeout=REPORT_TIMEOUT_SECONDS)
    except Exception:  # a report must never stand between the user and a closed cluster
        return None


def _scheduler_transitions(dask_scheduler: Any) -> int:
    return dask_scheduler.transition_counter


def close_sessions(run_id: str | None = None) -> None:
    """Close every cluster still open (of the run ``run_id`` only, if given).

    A cluster that fails to close is reported with its name, so it can be stopped by
    hand (``coiled cluster stop <name>``); the others are still closed, and so they are
    when a signal arrives meanwhile (it is raised once all are closed).
    """
    interrupted: KeyboardInterrupt | None = None
    for session in list(_sessions):
        if session.is_open and run_id in (None, session.plan.run_id):
            name = session.name
            try:
                session.close()
            except KeyboardInterrupt as interrupt:
                interrupted = interrupted or interrupt
            except Exception:
                session.logger.exception(
                    "could not close cluster %s (backend=%s): stop it by hand if it still runs",
                    name,
                    session.spec.backend,
                )
    if interrupted is not None:
        raise interrupted


def end_run(run_id: str) -> tuple[list[ClusterSession], KeyboardInterrupt | None]:
    """Close the clusters of the run ``run_id`` and forget them: its sessions, for what became of each,
    and the signal that arrived while they closed, if one did (they are closed all the same)."""
    interrupt = None
    try:
        close_sessions(run_id)
    except KeyboardInterrupt as arrived:
        interrupt = arrived
    ended = [session for session in _sessions if session.plan.run_id == run_id]
    _sessions[:] = [session for session in _sessions if session not in ended]
    return ended, interrupt


def close_when_finished(flow: Any, old_state: Any, new_state: Any) -> Any:
    """Prefect flow state handler: close the run's clusters once it is finished, however Prefect started it."""
    if new_state.is_finished():
        import prefect

        from .plan import PLAN_KEY, runner_run_id

        plan = prefect.context.get(PLAN_KEY)
        close_sessions(plan.run_id if plan is not None else runner_run_id())
    return new_state


def close_at_exit() -> None:
    """Exit hook: close what is still open; after a signal, exit with 128 + the signal.

    This is what ends a run interrupted under ``prefect run`` or in a script: their own
    handling of a ``KeyboardInterrupt`` knows nothing of clusters, nor of SIGTERM.
    """
    try:
        close_sessions()
    except KeyboardInterrupt:  # a signal while closing: the clusters are closed all the same
        pass
    if signals.received:
        interrupt = signals.Interrupted(signals.received[0])
        if not signals.reported:
            print(interrupted_line(interrupt, _sessions), file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(interrupt.exit_status)  # the status Python's own exit would not give


def kept_line(session: ClusterSession) -> str:
    """What becomes of a kept cluster: it runs on until its idle timeout, or until stopped by hand."""
    name = session.spec.kwargs["name"]
    return (
        f"cluster {name} is kept running by choice: Coiled stops it after {session.spec.kwargs['idle_timeout']} "
        f"without work; stop it now with `{stop_command(name)}`"
    )


def interrupted_line(interrupt: KeyboardInterrupt, sessions: Sequence[ClusterSession]) -> str:
    """The one line that ends an interrupted run: which signal, and what became of its clusters."""
    kept = [kept_line(session) for session in sessions if session.spec.kept and session.began]
    started = any(session.started for session in sessions if not session.spec.attached)
    attached = [session.name for session in sessions if session.spec.attached and session.started]
    if kept:
        what = "; ".join(kept)
    else:
        what = "no cluster is left running" if started else "nothing had started"
    if attached:
        runs_on = f"the cluster at {', '.join(dict.fromkeys(attached))} runs on (this project did not start it)"
        what = f"{what}; {runs_on}" if started else f"disconnected; {runs_on}"
    return f"interrupted by {signals.signal_name(interrupt)}; {what}"


class PerformanceReport:
    """Dask's performance report of everything a client's cluster does from ``start`` to ``write``.

    Made the way ``distributed.performance_report`` makes it, but written whole or not
    at all (a full disk leaves no truncated file to block the next run) and with Bokeh's
    scripts inline, so it shows without network.
    """

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label  # the report's "calling code": which run it shows
        self.started = 0.0
        self.count = 0

    def start(self, client: Any) -> None:
        self.started = time.time()
        self.count = client.run_on_scheduler(_monitor_count, callback_timeout=REPORT_TIMEOUT_SECONDS)
        client.get_task_stream(start=0, stop=0)  # installs the task stream plugin

    def write(self, client: Any, logger: logging.Logger) -> None:
        """Write the report, unless the run was interrupted (a Ctrl-C wants the cluster closed, now)."""
        if signals.received:
            logger.warning("performance report not written: the run was interrupted")
            return
        try:
            html = client.sync(
                client.scheduler.performance_report,
                start=self.started,
                last_count=self.count,
                code=self.label,
                mode="inline",
                callback_timeout=REPORT_TIMEOUT_SECONDS,
            )
            publish(self.path, html.encode())
        except Exception as error:  # a report must never stand between the user and a closed cluster
            logger.warning("performance report not written to %s: %s: %s", self.path, type(error).__name__, error)
            return
        logger.info("performance report written to %s", self.path)


def _monitor_count(dask_scheduler: Any) -> int:
    return dask_scheduler.monitor.count


def publish(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` whole or not at all, never replacing a file that exists.

    The bytes go to a temporary file beside it first, created as a plain write would be
    (the umask decides its permissions); a hard link then puts it in place, which fails
    if ``path`` appeared meanwhile.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def at_terminal() -> bool:
    """Whether a person watches the output; logs and tests get none of the terminal extras."""
    return sys.stdout.isatty()


def compute_with_progress(client: Any, collection: Any) -> Any:
    """Compute a Dask collection on ``client``'s cluster and return its result.

    At a terminal, a computation still running after ``PROGRESS_AFTER_SECONDS`` shows
    Dask's progress bar until it is done.
    """
    from distributed import TimeoutError as StillRunning  # asyncio's, not the builtin, before Python 3.11
    from distributed import progress, wait

    try:
        future = client.compute(collection)
        if at_terminal():
            with client.as_current():  # both find their client as the current one
                try:
                    wait(future, timeout=PROGRESS_AFTER_SECONDS)
                except StillRunning:
                    progress(future, notebook=False)
                    print(flush=True)  # the bar ends without a newline
        return future.result()
    except Exception:
        stop_if_scheduler_lost()  # one line and exit 1, rather than retries against a closed client
        raise


signals.install()
atexit.register(close_at_exit)
