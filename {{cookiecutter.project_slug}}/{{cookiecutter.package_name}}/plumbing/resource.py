"""``DaskCluster``: a cluster held as a Prefect resource, for flows that submit Dask work themselves.

Coiled's guide builds its LocalExecutor flow inside ``with coiled.Cluster(...)``, which
closes the cluster before ``flow.run()`` starts, so dask silently computes on local
threads. A resource starts its cluster when the run reaches it (never at import, so
``prefect run -p`` works), hands its client to the tasks inside its ``with`` block,
and closes it after them, on success and failure alike.
"""

from __future__ import annotations

from typing import Any

import prefect
from prefect import resource_manager

from .clusters import cluster_spec, resolve_backend
from .coiled_access import CoiledUnavailable
from .contract import check_current_run
from .overrides import exit_on_refusal
from .runlog import note_backend
from .session import ClusterSession


@resource_manager(name="dask_cluster")
class DaskCluster:
    """A cluster that lives exactly as long as the tasks inside its ``with`` block.

    Its first task checks the run's parameters and settings, so no cluster starts for
    a run that cannot work; the next one (``dask_cluster.setup``) starts the cluster.
    A refused setting exits 2, and Coiled out of reach exits 1, each with one line.
    """

    def __init__(self) -> None:
        self.flow_name = prefect.context.get("flow_name", "flow")
        check_current_run()
        with exit_on_refusal():
            self.backend = resolve_backend()
            self.session = ClusterSession(cluster_spec(self.backend, self.flow_name), prefect.context.get("logger"))

    def setup(self) -> Any:
        note_backend(self.flow_name, self.backend)
        with exit_on_refusal(CoiledUnavailable, code=1):
            return self.session.open()

    def cleanup(self, client: Any) -> None:
        self.session.close()
