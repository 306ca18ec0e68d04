"""A Prefect ``DaskExecutor`` whose cluster is chosen when the run starts and outlives retries.

Resolving the backend at start time, not import time, lets ``prefect run -p`` and the
command line share one flow object, and means importing a flow never creates a cluster.

Prefect's own ``DaskExecutor(cluster_class=...)`` creates a cluster each time it is
started, and ``flow.run`` starts it again for every pass it makes to retry a task: on
Coiled that is minutes of provisioning per retry. This executor starts the cluster on
the first pass and keeps it for the whole run; the flow's ``close_when_finished`` state
handler closes it when the run is finished, and any exception escaping a pass (Ctrl-C
included) closes it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.executors import DaskExecutor

from .clusters import cluster_spec, resolve_backend
from .coiled_access import CoiledUnavailable
from .contract import check_current_run
from .overrides import exit_on_refusal
from .runlog import note_backend
from .session import ClusterSession


class ClusterDaskExecutor(DaskExecutor):
    """A ``DaskExecutor`` on the chosen backend's cluster, one cluster per flow run."""

    def __init__(self, flow_name: str) -> None:
        # The worker-status watcher only warns about a duplicate scheduler plugin here.
        super().__init__(watch_worker_status=False)
        self.flow_name = flow_name
        self.session: ClusterSession | None = None

    @contextmanager
    def start(self) -> Iterator[None]:
        session = self._open_session()
        self.client = session.client
        try:
            self._pre_start_yield()
            try:
                yield
            finally:
                self._post_start_yield()
        except BaseException:
            session.close()
            raise
        finally:
            self.client = None

    def _open_session(self) -> ClusterSession:
        """The run's open session, or a new one once the parameters have passed.

        A refused setting exits 2, and Coiled out of reach exits 1, each with one line
        (under ``prefect run -p``; the command line has refused bad settings already).
        """
        if self.session is None or not self.session.is_open:
            check_current_run()
            with exit_on_refusal():
                backend = resolve_backend()
                self.session = ClusterSession(cluster_spec(backend, self.flow_name), self.logger)
            note_backend(self.flow_name, backend)
            with exit_on_refusal(CoiledUnavailable, code=1):
                self.session.open()
        return self.session
