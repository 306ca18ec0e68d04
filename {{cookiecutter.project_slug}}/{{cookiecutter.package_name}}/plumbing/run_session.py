"""The cluster session of a running flow, as both ways of computing on a cluster get it.

``DaskCluster`` (tasks that submit Dask work) and ``ClusterDaskExecutor`` (every task on
the cluster) take the same steps, in two moments: before anything starts, the run's
parameters and settings are checked and the backend chosen; then the cluster starts.
``prefect run -p`` reaches a flow without the command line's checks, so a refused
setting exits 2, and Coiled, a gateway or a scheduler out of reach exits 1, here, each with one line.
"""

from __future__ import annotations

import logging
from typing import Any

from .attach import ClusterUnreachable
from .clusters import cluster_spec, resolve_backend
from .coiled_access import CoiledUnavailable
from .contract import check_current_run
from .overrides import exit_on_refusal
from .runlog import note_backend
from .session import ClusterSession


def new_run_session(flow_name: str, logger: logging.Logger) -> ClusterSession:
    """A session on the chosen backend, once the run's parameters and settings have passed; nothing starts yet."""
    check_current_run()
    with exit_on_refusal():
        return ClusterSession(cluster_spec(resolve_backend(), flow_name), logger)


def open_run_session(session: ClusterSession) -> Any:
    """Start the session's cluster (or hand back its client) and note its backend for the run's summary line."""
    note_backend(session.spec.flow_name, session.spec.backend)
    with exit_on_refusal(CoiledUnavailable, ClusterUnreachable, code=1):
        return session.open()
