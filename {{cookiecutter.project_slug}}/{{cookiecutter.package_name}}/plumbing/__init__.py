"""The machinery that runs the project's flows; you do not need to edit this package.

Your flows live in ``flows/`` and your defaults in ``settings.py``. A flow module takes
what it needs from here in one import::

    from <package>.plumbing import DaskCluster, cluster_flow, cluster_task_retries, declare

- ``cluster_flow(name)``: a Prefect ``Flow`` whose clusters are closed however the run
  ends, with one summary line per run; ``every_task_on_cluster=True`` runs each task on
  the cluster through Prefect's ``DaskExecutor`` (one cluster for every retry pass).
- ``DaskCluster()``: a cluster held as a Prefect resource, for flows whose tasks submit
  Dask work themselves (``with DaskCluster() as client:``).
- ``cluster_task_retries()``: the retry policy for tasks that compute on a cluster.
- ``compute_with_progress(client, collection)``: a task's Dask computation on the
  cluster, with Dask's progress bar at a terminal when it takes a while.
- ``declare(flow, ...)``: the flow's entry in the project (``FLOW = declare(...)``).
- ``FlowCommand``, ``cluster_client(purpose)``: a command the flow adds to the command
  line (``declare(..., commands={"name": FlowCommand(...)})``) and the cluster it uses.
- ``Estimate``, ``Machine``: what a flow's ``estimate`` returns and receives (its sizes
  against this machine's limits, checked before a run starts).

Where the cluster runs (embedded, Coiled) is decided when a run starts, from the
command line, the environment and ``settings.py``: never in a flow's code. Importing
this package warns once about any ``<PREFIX>_*`` variable no setting reads, so a
misspelt override is never ignored without a word, whichever command runs.
"""

from .cluster_flow import cluster_flow
from .command import FlowCommand, cluster_client
from .contract import FlowContractError, FlowDeclaration, declare
from .estimate import Estimate, Machine
from .inside import compute_with_progress
from .overrides import warn_unknown_variables
from .resource import DaskCluster
from .retry import cluster_task_retries

warn_unknown_variables()

__all__ = [
    "DaskCluster",
    "Estimate",
    "FlowCommand",
    "FlowContractError",
    "FlowDeclaration",
    "Machine",
    "cluster_client",
    "cluster_flow",
    "cluster_task_retries",
    "compute_with_progress",
    "declare",
]
