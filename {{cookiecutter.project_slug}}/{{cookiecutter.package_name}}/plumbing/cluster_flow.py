"""``cluster_flow``: the Prefect ``Flow`` every flow of the project is built in."""

from __future__ import annotations

from prefect import Flow

from .executor import ClusterDaskExecutor
from .runlog import log_run_summary
from .session import close_when_finished


def cluster_flow(name: str, *, every_task_on_cluster: bool = False) -> Flow:
    """A flow whose clusters are closed however its run ends, with one summary line per run.

    With ``every_task_on_cluster`` Prefect's ``DaskExecutor`` submits every task run to
    the cluster, which starts when the run starts and serves every retry pass. Without
    it tasks run in the flow's process, and those that need a cluster take a client
    from ``with DaskCluster() as client:``.
    """
    flow = Flow(name, state_handlers=[close_when_finished, log_run_summary])
    if every_task_on_cluster:
        flow.executor = ClusterDaskExecutor(flow_name=name)
    return flow
