"""Open a cluster for one flow run and make sure it is closed, whatever happens.

Cloud clusters cost money while they run, so every cluster this project starts is
recorded here until it is closed, by the first of: a ``DaskCluster`` resource's cleanup
task; the flow state handler ``close_when_finished`` once a run is finished (the normal
path of flows with every task on the cluster, and the safety net for a cleanup that
failed or never ran); the runner, after a Ctrl-C, SIGTERM or SIGHUP in the command
line; an exit hook, after one of them under ``prefect run`` or in any other process
(``signals``). Closing is bounded in time, so a scheduler that does not answer cannot
hold the process forever. Coiled's idle and no-client timeouts are the last resort for a
process killed outright (SIGKILL). A cluster the run attached to by its address is not
the project's: its session closes only its own client, and the cluster keeps running.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import sys
from contextlib import nullcontext
from typing import Any

from . import signals
from .clusters import ClusterSpec
from .versions import check_cluster_versions

# How long the closing report may wait for a busy or unreachable scheduler.
REPORT_TIMEOUT_SECONDS = 10
# How long closing the client, then the cluster, may each wait for an unresponsive scheduler.
CLOSE_TIMEOUT_SECONDS = 20

_open_sessions: list[ClusterSession] = []
started_clusters = 0  # in this process; 0: an interrupt came before any cluster existed
attached_addresses: list[str] = []  # clusters this process attached to, which it leaves running


class ClusterSession:
    """One started cluster and its client."""

    def __init__(self, spec: ClusterSpec, logger: logging.Logger) -> None:
        self.spec = spec
        self.logger = logger
        self.cluster: Any = None
        self.client: Any = None
        self.transitions: int | None = None

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
        except BaseException:
            self.close()
            raise
        self.logger.info(
            "cluster backend=%s name=%s dashboard=%s", self.spec.backend, self.name, self.client.dashboard_link
        )
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
        try:
            if client is not None:
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
                cluster.close(**_bounded(cluster.close))
                self.logger.info(
                    "cluster backend=%s name=%s closed transitions=%s",
                    self.spec.backend,
                    name,
                    "unknown" if self.transitions is None else self.transitions,
                )


def _count_started() -> None:
    global started_clusters
    started_clusters += 1


def _bounded(close: Any) -> dict[str, Any]:
    """``timeout=`` for a ``close`` that takes one (distributed's clusters do; ``coiled.Cluster`` does not)."""
    return {"timeout": CLOSE_TIMEOUT_SECONDS} if "timeout" in inspect.signature(close).parameters else {}


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


def interrupted_line(interrupt: KeyboardInterrupt) -> str:
    """The one line that ends an interrupted run: which signal, and what became of the clusters."""
    what = "no cluster is left running" if started_clusters else "nothing had started"
    if attached_addresses:
        kept = f"the cluster at {', '.join(dict.fromkeys(attached_addresses))} runs on (this project did not start it)"
        what = f"{what}; {kept}" if started_clusters else f"disconnected; {kept}"
    return f"interrupted by {signals.signal_name(interrupt)}; {what}"


signals.install()
atexit.register(close_at_exit)
