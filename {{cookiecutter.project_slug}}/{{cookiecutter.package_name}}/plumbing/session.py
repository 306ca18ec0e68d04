"""Open a cluster for one flow run and make sure it is closed, whatever happens.

Cloud clusters cost money while they run, so every cluster this project starts is
recorded here until it is closed, by the first of: a ``DaskCluster`` resource's cleanup
task; the flow state handler ``close_when_finished`` once a run is finished (the normal
path of flows with every task on the cluster, and the safety net for a cleanup that
failed or never ran); the runner, after a Ctrl-C, SIGTERM or SIGHUP in the command
line; an exit hook, after one of them under ``prefect run`` or in any other process
(``signals``). Closing is bounded in time, so a scheduler that does not answer cannot
hold the process forever. Coiled's idle and no-client timeouts are the last resort for a
process killed outright (SIGKILL). Two exceptions, by choice: a kept Coiled cluster
(``run --keep``) is only let go of, and its idle timeout stops it; a cluster the run
attached to by its address is not the project's: its session closes only its own client.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import sys
import threading
from contextlib import nullcontext
from typing import Any

from . import signals
from .clusters import ClusterSpec
from .inside import PerformanceReport, show_dashboard
from .project_clusters import stop_command
from .versions import check_cluster_versions

# How long the closing report may wait for a busy or unreachable scheduler.
REPORT_TIMEOUT_SECONDS = 10
# How long closing the client, then the cluster, may each wait for an unresponsive scheduler.
CLOSE_TIMEOUT_SECONDS = 20

_open_sessions: list[ClusterSession] = []
started_clusters = 0  # in this process; 0: an interrupt came before any cluster existed
kept_clusters: list[str] = []  # what becomes of each kept cluster, once its session opens
attached_addresses: list[str] = []  # clusters this process attached to, which it leaves running


class ClusterSession:
    """One started cluster and its client."""

    def __init__(self, spec: ClusterSpec, logger: logging.Logger) -> None:
        self.spec = spec
        self.logger = logger
        self.cluster: Any = None
        self.client: Any = None
        self.transitions: int | None = None
        self.report: PerformanceReport | None = None

    @property
    def is_open(self) -> bool:
        return self.client is not None

    def open(self) -> Any:
        """Start the cluster, connect, check versions; returns the client.

        Prefect starts a new pass over the flow for every task retry and re-runs setup
        steps in each pass, so an open session hands back its client: one cluster serves
        every attempt of a run.
        """
        if self.is_open:
            return self.client
        from distributed import Client

        _open_sessions.append(self)
        if self.spec.kept and kept_line(self.spec) not in kept_clusters:
            kept_clusters.append(kept_line(self.spec))  # from its start on, even one a Ctrl-C cuts short
        try:
            if self.spec.attached:
                self.client = self.spec.start()
                attached_addresses.append(self.name)
            else:
                with signals.held() if self.spec.hold_signals_at_start else nullcontext():
                    self.cluster = self.spec.start()
                    _count_started()
                self.client = Client(self.cluster, set_as_default=False)
            check_cluster_versions(self.client)
            self.report = PerformanceReport.chosen(f"flow {self.spec.flow_name} on {self.spec.backend} cluster")
            if self.report is not None:
                self.report.start(self.client)
        except BaseException:
            self.close()
            raise
        self.logger.info(
            "cluster backend=%s name=%s dashboard=%s", self.spec.backend, self.name, self.client.dashboard_link
        )
        show_dashboard(self.client.dashboard_link)
        return self.client

    @property
    def name(self) -> str:
        """The cluster's name, or the scheduler's address for an attached cluster, which has none of ours."""
        if self.cluster is not None:
            return str(self.cluster.name)
        return str(self.spec.kwargs.get("address"))

    def close(self) -> None:
        """Close client and cluster; safe to call twice, and the cluster is closed even if the client fails.

        An impatient second signal waits until the cluster is closed: cut short, closing
        would leave it running (and billing) until its idle timeout.
        """
        if self in _open_sessions:
            _open_sessions.remove(self)
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        with signals.deferral():
            self._release(client, cluster)

    def _release(self, client: Any, cluster: Any) -> None:
        report, self.report = self.report, None
        try:
            if client is not None:
                if report is not None:
                    report.write(client, self.logger)
                if not self.spec.attached:  # a shared scheduler counts everyone's work
                    self.transitions = _transition_count(client)
                client.close(timeout=CLOSE_TIMEOUT_SECONDS)
                if self.spec.attached:
                    self.logger.info(
                        "cluster backend=%s name=%s disconnected, left running (this project did not start it)",
                        self.spec.backend,
                        self.name,
                    )
        finally:
            if cluster is not None:
                name = cluster.name
                close_within(cluster, CLOSE_TIMEOUT_SECONDS)  # of a kept cluster, only this handle
                transitions = "unknown" if self.transitions is None else self.transitions
                if self.spec.kept:
                    self.logger.info("%s (transitions=%s)", kept_line(self.spec), transitions)
                else:
                    self.logger.info(
                        "cluster backend=%s name=%s closed transitions=%s", self.spec.backend, name, transitions
                    )


def _count_started() -> None:
    global started_clusters
    started_clusters += 1


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


def close_sessions(flow_name: str | None = None) -> None:
    """Close every cluster still open (for ``flow_name`` only, if given).

    A cluster that fails to close is reported with its name, so it can be stopped by
    hand (``coiled cluster stop <name>``); the others are still closed, and so they are
    when a signal arrives meanwhile (it is raised once all are closed).
    """
    interrupted: KeyboardInterrupt | None = None
    for session in list(_open_sessions):
        if flow_name is None or session.spec.flow_name == flow_name:
            name = getattr(session.cluster, "name", "?")
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


def close_when_finished(flow: Any, old_state: Any, new_state: Any) -> Any:
    """Prefect flow state handler: close the flow's clusters once the run is finished."""
    if new_state.is_finished():
        close_sessions(flow.name)
    return new_state


def close_at_exit() -> None:
    """Exit hook: close what is still open; after a signal, say so and exit with 128 + the signal.

    This is what ends a run interrupted under ``prefect run`` or in a script: their own
    handling of a ``KeyboardInterrupt`` knows nothing of clusters, nor of SIGTERM.
    The project's command line reports the signal itself (``reported``).
    """
    try:
        close_sessions()
    except KeyboardInterrupt:  # a signal while closing: the clusters are closed all the same
        pass
    if signals.received and not signals.reported:
        interrupt = signals.Interrupted(signals.received[0])
        print(interrupted_line(interrupt), file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(interrupt.exit_status)  # the status Python's own exit would not give


def kept_line(spec: ClusterSpec) -> str:
    """What becomes of a kept cluster: it runs on until its idle timeout, or until stopped by hand."""
    name = spec.kwargs["name"]
    return (
        f"cluster {name} is kept running by choice: Coiled stops it after {spec.kwargs['idle_timeout']} "
        f"without work; stop it now with `{stop_command(name)}`"
    )


def interrupted_line(interrupt: KeyboardInterrupt) -> str:
    """The one line that ends an interrupted run: which signal, and what became of the clusters."""
    if kept_clusters:
        what = "; ".join(kept_clusters)
    else:
        what = "no cluster is left running" if started_clusters else "nothing had started"
    if attached_addresses:
        kept = f"the cluster at {', '.join(dict.fromkeys(attached_addresses))} runs on (this project did not start it)"
        what = f"{what}; {kept}" if started_clusters else f"disconnected; {kept}"
    return f"interrupted by {signals.signal_name(interrupt)}; {what}"


signals.install()
atexit.register(close_at_exit)
