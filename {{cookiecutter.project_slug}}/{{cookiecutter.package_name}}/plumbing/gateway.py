"""A cluster per run from a dask-gateway: ``--cluster gateway`` (the ``gateway`` extra).

Where a team runs dask-gateway (JupyterHub, Kubernetes or HPC deployments), a run asks
it for a cluster, scales it to ``<PREFIX>_GATEWAY_N_WORKERS`` and shuts it down when the
run ends, on success, failure and Ctrl-C alike, as a Coiled cluster is: the session
closes it, and it is made with ``shutdown_on_close=True``, so closing it stops it on the
gateway. Closing only the connection would leave it running, and a gateway's clusters
often have no idle timeout to stop them.

Signals are held while the cluster starts, as for the local cluster: a Ctrl-C in the
middle would leave a cluster on the gateway that the session never knew of. The gateway
bounds a start with its own timeout, and its address is checked first, so a gateway
that is not there fails within ``<PREFIX>_CONNECT_TIMEOUT_SECONDS`` with one line.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from .attach import ClusterUnreachable
from .overrides import SettingError, variable
from .rules import RuleError, gateway_url

DEFAULT_PORTS = {"http": 80, "https": 443}

_loop_runner: Any = None
# dask-gateway's clients close themselves again when collected, and that takes distributed's
# LoopRunner class lock: collected while another cluster's loop starts in this process (a
# local run after a gateway run), the collection deadlocks. So every gateway object made
# here is kept until the process ends, when those destructors do nothing.
_kept_until_exit: list[Any] = []


def keep_until_exit(gateway_object: Any) -> Any:
    """Hold ``gateway_object`` (a ``GatewayCluster`` or ``Gateway``) for the process's life; returns it."""
    _kept_until_exit.append(gateway_object)
    return gateway_object


def gateway_cluster_kwargs(address: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """``dask_gateway.GatewayCluster`` and its keyword arguments; SettingError without a gateway or the extra.

    The address is ``<PREFIX>_GATEWAY_ADDRESS``, else dask's own ``gateway.address``
    configuration (a dask config file or ``DASK_GATEWAY__ADDRESS``), as dask-gateway reads it.
    """
    try:
        from dask_gateway import GatewayCluster
        from dask_gateway.utils import format_template
    except ImportError:
        raise SettingError(
            '--cluster gateway: the gateway extra is not installed: pip install -e ".[gateway]"'
        ) from None
    import dask

    configured = format_template(dask.config.get("gateway.address", None))
    if not (address or configured):
        raise SettingError(
            f"{variable('GATEWAY_ADDRESS')}: no gateway is configured; set it, or dask's gateway.address "
            "(DASK_GATEWAY__ADDRESS), to the gateway's URL"
        )
    if not address:
        try:
            address = gateway_url(configured)
        except RuleError as error:
            raise SettingError(f"dask config gateway.address: {error}") from None
    return GatewayCluster, {"address": address, "shutdown_on_close": True}


def start_gateway_cluster(
    cluster_class: Callable[..., Any], kwargs: Mapping[str, Any], workers: int | None, timeout: float | None
) -> Any:
    """A new cluster from the gateway, scaled to ``workers``; ClusterUnreachable if the gateway does not answer.

    Whatever fails after the gateway made the cluster shuts it down before the error goes on.
    """
    require_reachable(kwargs["address"], timeout)
    try:
        cluster = keep_until_exit(cluster_class(**kwargs, loop=shared_loop()))
    except OSError as error:  # aiohttp's connection errors are OSErrors
        raise unreachable(kwargs["address"], error) from None
    try:
        if workers:
            cluster.scale(workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


def shared_loop() -> Any:
    """One event loop, kept running, for every gateway cluster of the process.

    A cluster given no loop starts one of its own and stops it when closed; its gateway
    client, collected later, then raises from its destructor and Python prints that
    traceback in the middle of the run's output.
    """
    global _loop_runner
    if _loop_runner is None:
        from distributed.utils import LoopRunner

        _loop_runner = LoopRunner(asynchronous=False)
        _loop_runner.start()
    return _loop_runner.loop


def require_reachable(url: str, timeout: float | None) -> None:
    """Open and close a connection to the gateway, or raise ClusterUnreachable within ``timeout`` seconds.

    dask-gateway's own requests wait up to five minutes for a server that does not answer.
    Through an HTTP proxy (dask's ``gateway.http-client.proxy``: one given, or by default
    ``HTTP_PROXY``/``HTTPS_PROXY``) only the proxy can tell, so there is no check then.
    """
    import dask

    parts = urlsplit(url)
    proxy = dask.config.get("gateway.http-client.proxy", None)
    if isinstance(proxy, str) or (proxy is True and parts.scheme in getproxies()):
        return
    try:
        with socket.create_connection((parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]), timeout=timeout):
            pass
    except OSError as error:
        raise unreachable(url, error) from None


def unreachable(url: str, error: OSError) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"the gateway at {url} cannot be reached ({error}); check the address ({variable('GATEWAY_ADDRESS')} "
        "or dask's gateway.address), that the gateway runs and that this machine can reach it; nothing was started"
    )
