"""The machinery that runs the project's flows; no need to edit this package unless you are changing how
every flow runs.

Your flows live in ``flows/`` and your defaults in ``settings.py``. A flow module takes
what it needs from here in one import::

    from <package>.plumbing import DaskCluster, cluster_flow, cluster_task_retries, declare

- ``cluster_flow(name)``: the flow, whose clusters are closed however a run ends;
  ``every_task_on_cluster=True`` runs each task on the cluster through Prefect's
  ``DaskExecutor`` (one cluster for every retry pass).
- ``DaskCluster()``: a cluster held as a Prefect resource, for flows whose tasks submit
  Dask work themselves (``with DaskCluster() as client:``).
- ``cluster_task_retries()``: retries for tasks that compute on a cluster, of failures
  that could pass (a lost worker, a network error), never of bad data or a bug.
- ``compute_with_progress(client, collection)``: a task's Dask computation on the
  cluster, with Dask's progress bar at a terminal when it takes a while.
- ``declare(flow, ...)``: the flow's entry in the project (``FLOW = declare(...)``);
  ``keep=[task]`` keeps a costly task's result for ``run --resume`` (``results.py``).
- ``FlowCommand``, ``cluster_client(plan)``: a command the flow adds to the command
  line (``declare(..., commands={"name": FlowCommand(...)})``) and the cluster it uses.
- ``run_flow(name, parameters)``: a run as the command line makes it, and its
  ``RunOutcome`` (state, result, failure): what tests check results with.
- ``Estimate``, ``Machine``: what a flow's ``estimate`` returns and receives (its sizes
  against this machine's limits, checked before a run starts).

Where the cluster runs (embedded, Coiled, a gateway, an address) is decided when a run
starts, from the command line, the environment and ``settings.py``, into the run's plan
(``plan.py``): never in a flow's code. The modules, in the order a run meets them:
``cli`` (commands), ``contract`` (flows and their declarations), ``rules`` (every setting
and its rule), ``plan`` (a run's choices), ``run`` (a run from start to end), ``flow``
(what flows build with), ``results`` (kept results, restored by ``run --resume``),
``session`` (a cluster's life), ``backends`` and ``coiled_api`` (starting each kind of
cluster), ``history`` and ``alerts`` (every run recorded, and told of when it fails),
``signals`` (Ctrl-C, SIGTERM, SIGHUP), ``doctor`` and ``local_workers`` (the embedded
cluster's workers).

Importing this package warns once about any ``<PREFIX>_*`` variable no setting reads, so
a misspelt override is never ignored without a word, whichever command runs.
"""

from .contract import FlowCommand, FlowContractError, FlowDeclaration, cluster_client, declare
from .flow import DaskCluster, cluster_flow, cluster_task_retries
from .plan import Estimate, Machine, RunPlan, warn_unknown_variables
from .run import RunOutcome, run_flow
from .session import compute_with_progress

warn_unknown_variables()

__all__ = [
    "DaskCluster",
    "Estimate",
    "FlowCommand",
    "FlowContractError",
    "FlowDeclaration",
    "Machine",
    "RunOutcome",
    "RunPlan",
    "cluster_client",
    "cluster_flow",
    "cluster_task_retries",
    "compute_with_progress",
    "declare",
    "run_flow",
]
