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

from .run_session import new_run_session, open_run_session
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
            self.session = new_run_session(self.flow_name, self.logger)
            open_run_session(self.session)
        return self.session
