"""Where flows run: a backend name becomes a cluster class and its keyword arguments.

The backend comes, highest precedence first, from an explicit choice (the CLI's
``--cluster``, held for the run by ``chosen_backend``), the ``<PREFIX>_CLUSTER``
environment variable and ``settings.DEFAULT_BACKEND``. Moving a flow to Coiled is
therefore a configuration change, never a code change. Every setting in ``settings.py`` can be
overridden by the environment variable named next to it, so CI and colleagues can
resize a cluster without editing code.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..settings import COILED_DEFAULTS, DEFAULT_BACKEND, ENV_PREFIX, LOCAL_DEFAULTS, PROJECT_TAG

BACKENDS = ("local", "coiled")
BACKEND_VAR = f"{ENV_PREFIX}CLUSTER"
FLAGS = {"true": True, "false": False}
SPOT_POLICIES = ("spot_with_fallback", "on-demand", "spot")
MAX_WORKERS = 1000
# Dask settings while the embedded cluster starts. gilknocker (installed with coiled)
# gives every scheduler, nanny and worker a native thread sampling GIL contention for the
# dashboard; at exit after a Ctrl-C it can abort the process ("FATAL: exception not
# rethrown", status -6 instead of 130), so the local cluster goes without that one plot.
LOCAL_DASK_CONFIG = {"distributed.admin.system-monitor.gil.enabled": False}


class ClusterConfigError(ValueError):
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

    def start(self) -> Any:
        """Start the cluster under ``dask_config``; the caller owns it and must close it."""
        import dask

        with dask.config.set(dict(self.dask_config)):
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
        source, backend = "--cluster", explicit
    elif environ.get(BACKEND_VAR):
        source, backend = BACKEND_VAR, environ[BACKEND_VAR]
    else:
        source, backend = "settings.DEFAULT_BACKEND", DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ClusterConfigError(f"{source}: unknown cluster {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def cluster_spec(backend: str, flow_name: str, environ: Mapping[str, str] | None = None) -> ClusterSpec:
    """Build the spec for ``backend``; imports coiled only when it is needed."""
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
        import coiled

        return ClusterSpec("coiled", flow_name, coiled.Cluster, coiled_cluster_kwargs(flow_name, environ))
    raise ClusterConfigError(f"unknown cluster {backend!r}; choose one of {', '.join(BACKENDS)}")


def local_cluster_kwargs(environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``distributed.LocalCluster``."""
    settings = _settings("LOCAL", LOCAL_DEFAULTS, environ)
    return {
        "n_workers": _count(settings, "n_workers", "LOCAL", upper=64),
        "threads_per_worker": _count(settings, "threads_per_worker", "LOCAL", upper=64),
        "processes": _flag(settings, "processes", "LOCAL"),
        # ":0" picks a free port, so a second run or a notebook's cluster never clashes.
        "dashboard_address": ":0",
    }


def coiled_cluster_kwargs(flow_name: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``coiled.Cluster`` in the form its current client expects.

    Package sync stays on (no ``software=``), ``workspace`` replaces the deprecated
    ``account``, and the cluster shuts down when the flow closes it, when it sits idle,
    and when no client has been connected for a while. Every value is checked here, so a
    typo fails in a second on this machine instead of after minutes of provisioning.
    """
    settings = _settings("COILED", COILED_DEFAULTS, environ)
    policy = settings["spot_policy"]
    if policy not in SPOT_POLICIES:
        raise ClusterConfigError(
            f"{_var('COILED', 'spot_policy')}: {policy!r} is not a spot policy; choose one of {', '.join(SPOT_POLICIES)}"
        )
    for duration in ("idle_timeout", "no_client_timeout"):
        _duration(settings, duration)
    _memory(settings, "worker_memory")
    kwargs: dict[str, Any] = {
        "name": settings["name"] or f"{PROJECT_TAG}-{flow_name}-{secrets.token_hex(3)}",
        "n_workers": _count(settings, "n_workers", "COILED", upper=MAX_WORKERS),
        "worker_cpu": _count(settings, "worker_cpu", "COILED", upper=1024),
        "worker_memory": settings["worker_memory"],
        "idle_timeout": settings["idle_timeout"],
        "no_client_timeout": settings["no_client_timeout"],
        "spot_policy": policy,
        "shutdown_on_close": True,
        "tags": {"project": PROJECT_TAG, "flow": flow_name},
    }
    for optional in ("workspace", "region"):
        if settings[optional]:
            kwargs[optional] = settings[optional]
    return kwargs


def _var(group: str, key: str) -> str:
    return f"{ENV_PREFIX}{group}_{key.upper()}"


def _settings(group: str, defaults: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    return {key: environ.get(_var(group, key), default).strip() for key, default in defaults.items()}


def _count(settings: Mapping[str, str], key: str, group: str, upper: int) -> int:
    raw = settings[key]
    if not raw.isdigit() or not 1 <= int(raw) <= upper:
        raise ClusterConfigError(f"{_var(group, key)}: {raw!r} is not a whole number from 1 to {upper}")
    return int(raw)


def _flag(settings: Mapping[str, str], key: str, group: str) -> bool:
    raw = settings[key].lower()
    if raw not in FLAGS:
        raise ClusterConfigError(f"{_var(group, key)}: {settings[key]!r} is not one of {', '.join(FLAGS)}")
    return FLAGS[raw]


def _memory(settings: Mapping[str, str], key: str) -> None:
    from dask.utils import parse_bytes

    raw = settings[key]
    try:
        size = parse_bytes(raw)
    except (ValueError, TypeError):
        size = 0
    # A bare number means bytes to dask but GiB to Coiled: insist on a unit.
    if size <= 0 or raw.replace(".", "", 1).isdigit():
        raise ClusterConfigError(f"{_var('COILED', key)}: {raw!r} is not a memory size such as 16GiB or 8 GB")


def _duration(settings: Mapping[str, str], key: str) -> None:
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(settings[key])
    except (KeyError, ValueError, TypeError):
        seconds = None
    if not seconds or seconds <= 0:
        raise ClusterConfigError(
            f"{_var('COILED', key)}: {settings[key]!r} is not a duration such as '20 minutes', '45m' or '2 hours'"
        )
