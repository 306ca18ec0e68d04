"""Where flows run: a backend name becomes a cluster class and its keyword arguments.

The backend comes, highest precedence first, from an explicit choice (the CLI's
``--cluster``, held for the run by ``chosen_backend``), the ``<PREFIX>_CLUSTER``
environment variable and ``settings.DEFAULT_BACKEND``. Each of them takes a backend
name (``local``, ``coiled``, ``gateway``) or the address of a scheduler someone else
runs (``tcp://host:8786``), which the run attaches to: it connects a client, and
never closes or shuts down that cluster (``attach.py``). Moving a flow to Coiled, a
gateway or a team's cluster is therefore a configuration change, never a code change.
Every setting in ``settings.py`` can be overridden by the environment variable named
next to it, so CI and colleagues can resize a cluster without editing code.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import (
    COILED_DEFAULTS,
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_BACKEND,
    GATEWAY_DEFAULTS,
    LOCAL_DEFAULTS,
    PROJECT_TAG,
)
from .attach import ATTACHED, attach_kwargs, connect
from .choices import KEEP
from .coiled_access import require_credentials, start_cluster
from .gateway import gateway_cluster_kwargs, start_gateway_cluster
from .overrides import SettingError, read_setting, variable
from .rules import NAME_MAX, RULES, RuleError, memory_per_cpu_problem

BACKEND_VAR = variable("CLUSTER")
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


class ClusterConfigError(SettingError):
    """A backend name or cluster setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class ClusterSpec:
    """Everything needed to start one cluster, decided before anything starts."""

    backend: str
    flow_name: str
    cluster_class: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
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
            if self.backend == "coiled":
                return start_cluster(self.cluster_class, self.kwargs)
            if self.backend == "gateway":
                return start_gateway_cluster(self.cluster_class, self.kwargs, self.workers, self.connect_timeout)
            if self.attached:
                return connect(self.cluster_class, self.kwargs, self.connect_timeout)
            return self.cluster_class(**self.kwargs)


_run_backend: str | None = None


@contextmanager
def chosen_backend(backend: str | None) -> Iterator[None]:
    """Make ``backend`` the explicit choice of the runs started inside the block."""
    global _run_backend
    previous, _run_backend = _run_backend, backend
    try:
        yield
    finally:
        _run_backend = previous


def resolve_backend(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Pick the backend: explicit choice, then the environment, then the baked default."""
    environ = os.environ if environ is None else environ
    explicit = explicit or _run_backend
    if explicit:
        try:
            return str(RULES["CLUSTER"](explicit))
        except RuleError as error:
            raise ClusterConfigError(f"--cluster: {error}") from None
    try:
        return str(read_setting("CLUSTER", DEFAULT_BACKEND, environ))
    except SettingError as error:
        raise ClusterConfigError(str(error)) from None


def cluster_spec(backend: str, flow_name: str, environ: Mapping[str, str] | None = None) -> ClusterSpec:
    """Build the spec for ``backend``; imports coiled only when it is needed.

    A Coiled spec is only built with a token, or at a terminal where Coiled's own
    browser login can get one (``coiled_access.require_credentials``).
    """
    environ = os.environ if environ is None else environ
    if backend == "local":
        from distributed import LocalCluster

        return ClusterSpec(
            "local",
            flow_name,
            LocalCluster,
            local_cluster_kwargs(environ),
            LOCAL_DASK_CONFIG,
            hold_signals_at_start=True,
        )
    if backend == "coiled":
        kwargs = coiled_cluster_kwargs(flow_name, environ)
        require_credentials(environ)
        import coiled

        return ClusterSpec("coiled", flow_name, coiled.Cluster, kwargs)
    timeout = _connect_timeout(environ)
    if backend == "gateway":
        settings = _settings("GATEWAY", GATEWAY_DEFAULTS, environ)
        try:
            cluster_class, kwargs = gateway_cluster_kwargs(settings["address"])
        except SettingError as error:
            raise ClusterConfigError(str(error)) from None
        return ClusterSpec(
            "gateway",
            flow_name,
            cluster_class,
            kwargs,
            hold_signals_at_start=True,
            workers=settings["n_workers"],
            connect_timeout=timeout,
        )
    from distributed import Client

    # Any other backend resolve_backend accepts is a scheduler's address.
    return ClusterSpec(ATTACHED, flow_name, Client, attach_kwargs(backend), connect_timeout=timeout)


def local_cluster_kwargs(environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``distributed.LocalCluster``."""
    settings = _settings("LOCAL", LOCAL_DEFAULTS, environ)
    return {
        "n_workers": settings["n_workers"],
        "threads_per_worker": settings["threads_per_worker"],
        "processes": settings["processes"],
        # ":0" picks a free port, so a second run or a notebook's cluster never clashes.
        "dashboard_address": ":0",
    }


def coiled_cluster_kwargs(flow_name: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``coiled.Cluster`` in the form its current client expects.

    Package sync stays on (no ``software=``), ``workspace`` replaces the deprecated
    ``account``, and the cluster shuts down when the flow closes it, when it sits idle,
    and when no client has been connected for a while. Every value is checked here, so a
    typo fails in a second on this machine instead of after minutes of provisioning.

    A kept cluster (``run --keep`` or ``<PREFIX>_COILED_KEEP=true``) has a stable name per
    project and flow and ``shutdown_on_close=False``: the next run of the flow reconnects
    to it instead of waiting minutes for a new one, and only its idle timeout stops it.
    """
    settings = _settings("COILED", COILED_DEFAULTS, environ)
    problem = memory_per_cpu_problem(settings["worker_memory"], settings["worker_cpu"], variable("COILED_WORKER_CPU"))
    if problem is not None:
        raise ClusterConfigError(f"{variable('COILED_WORKER_MEMORY')}: {problem}")
    kwargs: dict[str, Any] = {
        "name": settings["name"] or f"{PROJECT_TAG}-{flow_name}-{secrets.token_hex(3)}",
        "n_workers": settings["n_workers"],
        "worker_cpu": settings["worker_cpu"],
        "worker_memory": settings["worker_memory"],
        "idle_timeout": settings["idle_timeout"],
        "no_client_timeout": settings["no_client_timeout"],
        "spot_policy": settings["spot_policy"],
        "shutdown_on_close": True,
        "tags": {"project": PROJECT_TAG, "flow": flow_name},
    }
    if KEEP.value or settings["keep"]:
        kwargs["name"] = settings["name"] or kept_name(flow_name)
        kwargs["shutdown_on_close"] = False
        # Coiled ignores it without shutdown_on_close (the next run must find the cluster
        # when this client has gone); the idle timeout is what stops a kept cluster.
        del kwargs["no_client_timeout"]
    for optional in ("workspace", "region"):
        if settings[optional]:
            kwargs[optional] = settings[optional]
    return kwargs


def kept_name(flow_name: str) -> str:
    """The stable name of the flow's kept cluster: ``<project>-<flow>`` in the letters Coiled
    allows in a name (rules.NAME); one too long is cut, and ends in a digest of the flow's
    name so that each flow keeps a cluster of its own."""
    name = re.sub(r"[^a-z0-9]+", "-", f"{PROJECT_TAG}-{flow_name}".lower()).strip("-")
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(flow_name.encode()).hexdigest()[:6]
    return f"{name[: NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def _connect_timeout(environ: Mapping[str, str]) -> float:
    """Seconds to wait for a cluster the project does not start to answer."""
    try:
        return float(str(read_setting("CONNECT_TIMEOUT_SECONDS", CONNECT_TIMEOUT_SECONDS, environ)))
    except SettingError as error:
        raise ClusterConfigError(str(error)) from None


def _settings(group: str, defaults: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Every setting of ``group``, read and checked (ClusterConfigError for the first refused)."""
    try:
        return {key: read_setting(f"{group}_{key.upper()}", default, environ) for key, default in defaults.items()}
    except SettingError as error:
        raise ClusterConfigError(str(error)) from None
