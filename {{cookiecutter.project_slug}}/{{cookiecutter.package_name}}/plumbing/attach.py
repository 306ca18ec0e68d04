"""Attach to a cluster someone else runs: ``--cluster tcp://host:8786`` (or ``<PREFIX>_CLUSTER``).

Teams run Dask on Kubernetes, on an HPC scheduler or on a VM with ``dask scheduler``;
a run there connects a client to the scheduler's address and computes as on a cluster
of its own, with the same version checks. It owns only that client: when the run ends,
however it ends (a failed task, Ctrl-C, SIGTERM), the client is closed and the cluster
keeps running for whoever else uses it. An address that does not answer fails within
``<PREFIX>_CONNECT_TIMEOUT_SECONDS`` with one line, before any work is sent; distributed's
own default would retry for 30 seconds and end in a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ATTACHED = "attached"  # the backend of a cluster reached by its address


class ClusterUnreachable(RuntimeError):
    """A cluster the project does not start did not answer; the message says which and what to check."""


def attach_kwargs(address: str) -> dict[str, Any]:
    """Keyword arguments for ``distributed.Client``: the address, and not as the process's default client."""
    return {"address": address, "set_as_default": False}


def connect(client_class: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float) -> Any:
    """A client of the scheduler at ``kwargs["address"]``; ClusterUnreachable if it does not answer in ``timeout`` s."""
    try:
        return client_class(**kwargs, timeout=timeout)
    except OSError as error:  # distributed's connect timeouts and refusals are OSErrors
        raise ClusterUnreachable(
            f"the scheduler at {kwargs['address']} cannot be reached ({error}); check the address, that the "
            "scheduler runs and that this machine can reach it; nothing was run"
        ) from None
