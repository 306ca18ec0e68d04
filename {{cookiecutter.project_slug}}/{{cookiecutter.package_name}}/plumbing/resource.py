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

from .run_session import new_run_session, open_run_session


@resource_manager(name="dask_cluster")
class DaskCluster:
    """A cluster that lives exactly as long as the tasks inside its ``with`` block.

    Its first task checks the run's parameters and settings, so no cluster starts for
    a run that cannot work; the next one (``dask_cluster.setup``) starts the cluster.
    A refused setting exits 2, and Coiled out of reach exits 1, each with one line.
    """

    def __init__(self) -> None:
        self.session = new_run_session(prefect.context.get("flow_name", "flow"), prefect.context.get("logger"))

    def setup(self) -> Any:
        return open_run_session(self.session)

    def cleanup(self, client: Any) -> None:
        self.session.close()
