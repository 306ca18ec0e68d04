"""The kinds of cluster a run computes on, other than Coiled's: how each one is started or reached.

A backend is chosen per run (``plan.py``) and becomes a ``ClusterSpec``: the class to
call, its keyword arguments, and the function that starts it. ``local`` is the embedded
``distributed.LocalCluster``. An address (``tcp://host:8786``) is a cluster someone
else runs: the run connects a client and never closes that cluster. ``gateway`` asks a
dask-gateway for a cluster of its own and shuts it down at the end. Coiled's clusters
are in ``coiled_api.py``. Whatever the backend, the packages that serialize work must
match between this machine and the cluster, so every connection checks them first.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from ..settings import ENV_PREFIX
from .rules import RuleError, SettingError, gateway_url

ATTACHED = "attached"  # the backend of a cluster reached by its address
# Dask settings while the embedded cluster starts. gilknocker (installed with coiled)
# gives every scheduler, nanny and worker a native thread sampling GIL contention for the
# dashboard; at exit after a Ctrl-C it can abort the process ("FATAL: exception not
# rethrown", status -6 instead of 130), so the local cluster goes without that one plot.
# Its workers load local_workers.py, which keeps their closing noise out of the terminal;
# by file path, so they do not import (and run) the whole package for it.
LOCAL_DASK_CONFIG = {
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.preload": [str(Path(__file__).with_name("local_workers.py"))],
}
DEFAULT_PORTS = {"http": 80, "https": 443}
# Client, scheduler and workers must run the same versions of these, or work fails in
# ways that are hard to trace (pickling errors, hung tasks).
MUST_MATCH = ("python", "dask", "distributed", "tornado", "cloudpickle", "msgpack")


class ClusterUnreachable(RuntimeError):
    """A cluster the project does not start did not answer; the message says which and what to check."""


class VersionMismatchError(RuntimeError):
    """The cluster runs other versions of packages that must match this machine's."""


@dataclass(frozen=True)
class ClusterSpec:
    """Everything needed to start one cluster, decided before anything starts."""

    backend: str
    name: str  # what the cluster is for: a flow's or a command's name
    cluster_class: Callable[..., Any]
    kwargs: Mapping[str, Any]
    opener: Callable[[ClusterSpec], Any]  # starts the cluster (or, attached, connects a client)
    dask_config: Mapping[str, Any] = field(default_factory=dict)
    # Hold SIGINT/SIGTERM/SIGHUP pending while it starts (signals.held): a local cluster
    # starts in seconds; a cloud one takes minutes, during which a Ctrl-C must still work.
    hold_signals_at_start: bool = False
    workers: int | None = None  # scaled to once started (a gateway's clusters start with none)
    connect_timeout: float | None = None  # seconds a cluster the project does not start has to answer

    @property
    def attached(self) -> bool:
        """A cluster someone else runs: ``start`` connects a client, and nothing here closes the cluster."""
        return self.backend == ATTACHED

    @property
    def kept(self) -> bool:
        """A Coiled cluster that outlives the run, for the next one (``run --keep``, ``<PREFIX>_COILED_KEEP``)."""
        return self.kwargs.get("shutdown_on_close") is False

    def start(self) -> Any:
        """Start the cluster under ``dask_config``; the caller owns it and must close it.

        For an attached cluster this returns a connected client, the only thing the
        caller owns there.
        """
        import dask

        with dask.config.set(dict(self.dask_config)):
            return self.opener(self)


def start_class(spec: ClusterSpec) -> Any:
    return spec.cluster_class(**spec.kwargs)


def local_spec(name: str, n_workers: int, threads_per_worker: int, processes: bool) -> ClusterSpec:
    """The embedded cluster; ``dashboard_address=":0"`` picks a free port, so a second run never clashes."""
    from distributed import LocalCluster

    kwargs = {
        "n_workers": n_workers,
        "threads_per_worker": threads_per_worker,
        "processes": processes,
        "dashboard_address": ":0",
    }
    return ClusterSpec("local", name, LocalCluster, kwargs, start_class, LOCAL_DASK_CONFIG, hold_signals_at_start=True)


def attached_spec(name: str, address: str, timeout: float) -> ClusterSpec:
    """A client of the scheduler at ``address`` (not the process's default client), for clusters teams run
    themselves (Kubernetes, HPC, a VM with ``dask scheduler``)."""
    from distributed import Client

    kwargs = {"address": address, "set_as_default": False}
    return ClusterSpec(ATTACHED, name, Client, kwargs, connect, connect_timeout=timeout)


def connect(spec: ClusterSpec) -> Any:
    """A connected client; ClusterUnreachable if the scheduler does not answer within the connect timeout.

    distributed bounds only the TCP connect with its ``timeout``: the Dask handshake after
    it waits forever on a listener that accepts and never answers (an HTTP server, a
    wrong port), and its own default would retry for 30 seconds and end in a traceback.
    So one deadline covers the client's whole start, and a start that fails closes the
    client and stops its event loop's thread, leaving nothing behind.
    """
    address = spec.kwargs["address"]
    try:
        return bounded(spec.cluster_class)(**spec.kwargs, timeout=spec.connect_timeout)
    except OSError as error:  # distributed's connect timeouts and refusals are OSErrors
        raise ClusterUnreachable(
            f"the scheduler at {address} cannot be reached ({error}); check the address, that the "
            "scheduler runs and that this machine can reach it; nothing was run"
        ) from None
    except Exception as error:  # a Dask server that is no scheduler (a worker, a nanny) refuses the handshake
        answer = str(error).splitlines()[0][:120] if str(error) else ""
        raise ClusterUnreachable(
            f"the server at {address} is no Dask scheduler (it answered {type(error).__name__}: {answer}); "
            "give the scheduler's address, not a worker's; nothing was run"
        ) from None


def bounded(client_class: type) -> type:
    """``client_class`` (distributed's ``Client``) with its ``timeout`` over its whole start: connect,
    handshake, identity, registration."""
    import asyncio

    from dask.typing import no_default
    from dask.utils import parse_timedelta
    from distributed.utils import wait_for

    class BoundedClient(client_class):  # type: ignore[misc, valid-type]
        async def _start(self, timeout: Any = no_default, **kwargs: Any) -> Any:
            seconds = parse_timedelta(self._timeout if timeout is no_default else timeout, "s")
            try:
                return await wait_for(super()._start(timeout=timeout, **kwargs), seconds)
            except BaseException as error:
                await self._close(fast=True)  # closed: its destructor leaves it alone
                if isinstance(error, asyncio.TimeoutError):  # whichever stage it was, distributed's words
                    raise OSError(f"Timed out trying to connect to {self._start_arg} after {seconds:g} s") from None
                raise

        def start(self, **kwargs: Any) -> None:
            try:
                super().start(**kwargs)
            except BaseException:
                self._loop_runner.stop()  # distributed leaves the loop's thread running after a failed start
                raise

    BoundedClient.__name__ = BoundedClient.__qualname__ = client_class.__name__
    return BoundedClient


# dask-gateway (the ``gateway`` extra): where a team runs one (JupyterHub, Kubernetes or
# HPC), a run asks it for a cluster, scales it and shuts it down when the run ends, as a
# Coiled cluster is. It is made with ``shutdown_on_close=True``: closing only the
# connection would leave it running, and a gateway's clusters often have no idle timeout.

_gateway_loop: Any = None
# dask-gateway's clients close themselves again when collected, and that takes distributed's
# LoopRunner class lock: collected while another cluster's loop starts in this process (a
# local run after a gateway run), the collection deadlocks. So every gateway object made
# here is kept until the process ends, when those destructors do nothing.
_kept_until_exit: list[Any] = []


def gateway_spec(name: str, address: str, n_workers: int, timeout: float) -> ClusterSpec:
    """``dask_gateway.GatewayCluster`` at ``address``, else at dask's own ``gateway.address``
    configuration (a dask config file or ``DASK_GATEWAY__ADDRESS``), as dask-gateway reads it.
    SettingError without a gateway or without the extra."""
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
            f"{ENV_PREFIX}GATEWAY_ADDRESS: no gateway is configured; set it, or dask's gateway.address "
            "(DASK_GATEWAY__ADDRESS), to the gateway's URL"
        )
    if not address:
        try:
            address = gateway_url(configured)
        except RuleError as error:
            raise SettingError(f"dask config gateway.address: {error}") from None
    kwargs = {"address": address, "shutdown_on_close": True}
    # Signals are held while it starts: a Ctrl-C in the middle would leave a cluster on the
    # gateway that the session never knew of.
    return ClusterSpec(
        "gateway",
        name,
        GatewayCluster,
        kwargs,
        start_gateway_cluster,
        hold_signals_at_start=True,
        workers=n_workers,
        connect_timeout=timeout,
    )


def start_gateway_cluster(spec: ClusterSpec) -> Any:
    """A new cluster from the gateway, scaled to ``spec.workers``; ClusterUnreachable if the gateway does not
    answer. Whatever fails after the gateway made the cluster shuts it down before the error goes on."""
    address = spec.kwargs["address"]
    require_reachable(address, spec.connect_timeout)
    try:
        cluster = spec.cluster_class(**spec.kwargs, loop=gateway_loop())
    except OSError as error:  # aiohttp's connection errors are OSErrors
        raise gateway_unreachable(address, error) from None
    _kept_until_exit.append(cluster)
    try:
        if spec.workers:
            cluster.scale(spec.workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


def gateway_loop() -> Any:
    """One event loop, kept running, for every gateway cluster of the process.

    A cluster given no loop starts one of its own and stops it when closed; its gateway
    client, collected later, then raises from its destructor and Python prints that
    traceback in the middle of the run's output.
    """
    global _gateway_loop
    if _gateway_loop is None:
        from distributed.utils import LoopRunner

        _gateway_loop = LoopRunner(asynchronous=False)
        _gateway_loop.start()
    return _gateway_loop.loop


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
        raise gateway_unreachable(url, error) from None


def gateway_unreachable(url: str, error: OSError) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"the gateway at {url} cannot be reached ({error}); check the address ({ENV_PREFIX}GATEWAY_ADDRESS or "
        "dask's gateway.address), that the gateway runs and that this machine can reach it; nothing was started"
    )


def _comparable(package: str, version: str | None) -> str | None:
    if version is None or package != "python":
        return version
    return ".".join(version.split(".")[:2])  # Coiled matches Python by minor version


def find_mismatches(versions: Mapping[str, Any]) -> list[str]:
    """Describe each must-match package whose version differs from the client's.

    ``versions`` has the shape returned by ``distributed.Client.get_versions()``.
    """
    client = versions["client"]["packages"]
    others = {"scheduler": versions["scheduler"]["packages"]}
    others.update({f"worker {addr}": info["packages"] for addr, info in versions.get("workers", {}).items()})
    problems = []
    for package in MUST_MATCH:
        expected = _comparable(package, client.get(package))
        for where, packages in others.items():
            found = _comparable(package, packages.get(package))
            if found != expected:
                problems.append(f"{package}: this machine has {expected}, {where} has {found}")
    return problems


def check_cluster_versions(client: Any) -> None:
    """Raise VersionMismatchError if the connected cluster cannot safely run this code."""
    problems = find_mismatches(client.get_versions())
    if problems:
        raise VersionMismatchError(
            "the cluster's packages do not match this environment's; rebuild the environment from the pins "
            "and run `doctor` before retrying:" + "".join(f"\n  {problem}" for problem in problems)
        )
