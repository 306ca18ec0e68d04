"""Everything that talks to Coiled: a run's cluster, the first contact, and the ``clusters`` command.

Cluster keyword arguments are in the form the current client expects: package sync
stays on (no ``software=``), ``workspace`` replaces the deprecated ``account``, and the
cluster shuts down when the run closes it, when it sits idle, and when no client has
been connected for a while. Every value has been checked by the settings' rules, so a
typo fails in a second on this machine instead of after minutes of provisioning.

Without a token, ``coiled.Cluster`` starts a browser login and polls Coiled for about
ten minutes: right at a terminal, a silent hang in CI or any run without one. When
Coiled cannot be reached or refuses the token, its client raises from deep inside
aiohttp; the user needs one line saying what to check, the traceback only when debugging.

``clusters`` lists the project's running clusters (kept ones run on between runs until
their idle timeout; a run killed outright leaves one until its no-client timeout) and
stops them, with the client's own functions. The project's clusters are the ones it
tags ``project=<PROJECT_TAG>`` and names ``<PROJECT_TAG>-...``. The calls' arguments are
built by small functions of their own, so the tests bind them to the real signatures.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any

from prefect.utilities.logging import get_logger

from ..settings import ENV_PREFIX, PROJECT_TAG
from .backends import ClusterSpec
from .rules import NAME_MAX, SettingError, memory_per_cpu_problem

TOKEN_VARIABLE = "DASK_COILED__TOKEN"
LOGIN = f"run `coiled login` once on this machine, or set {TOKEN_VARIABLE} (in CI, from a secret)"
PROG = f"python -m {__package__.partition('.')[0]}"
ALL = ""  # ``clusters --stop`` without a name: every running cluster of the project
# coiled.v2.states.ClusterStateEnum: the states of a cluster that is gone or going.
ENDED_STATES = ("stopping", "stopped", "error")

# Prefect's logger: PREFECT__LOGGING__LEVEL=DEBUG shows the full error behind the one line.
logger = get_logger("coiled")


class CoiledLoginNeeded(SettingError):
    """No Coiled token and no terminal to log in from."""


class CoiledUnavailable(RuntimeError):
    """Coiled could not be reached, or refused the request; the message says what to check."""


def coiled_spec(name: str, settings: Mapping[str, Any], keep: bool, environ: Mapping[str, str]) -> ClusterSpec:
    """The Coiled cluster of a run named ``name``, from the ``COILED_*`` settings (keys without the
    prefix, values as the rules read them); refuses first when Coiled would wait for a login nobody can give.

    A kept cluster (``run --keep`` or ``COILED_KEEP=true``) has a stable name per project
    and flow and ``shutdown_on_close=False``: the next run of the flow reconnects to it
    instead of waiting minutes for a new one, and only its idle timeout stops it.
    """
    problem = memory_per_cpu_problem(
        settings["COILED_WORKER_MEMORY"], settings["COILED_WORKER_CPU"], f"{ENV_PREFIX}COILED_WORKER_CPU"
    )
    if problem is not None:
        raise SettingError(f"{ENV_PREFIX}COILED_WORKER_MEMORY: {problem}")
    kwargs: dict[str, Any] = {
        "name": settings["COILED_NAME"] or f"{PROJECT_TAG}-{name}-{secrets.token_hex(3)}",
        "n_workers": settings["COILED_N_WORKERS"],
        "worker_cpu": settings["COILED_WORKER_CPU"],
        "worker_memory": settings["COILED_WORKER_MEMORY"],
        "idle_timeout": settings["COILED_IDLE_TIMEOUT"],
        "no_client_timeout": settings["COILED_NO_CLIENT_TIMEOUT"],
        "spot_policy": settings["COILED_SPOT_POLICY"],
        "shutdown_on_close": True,
        "tags": {"project": PROJECT_TAG, "flow": name},
    }
    if keep:
        kwargs["name"] = settings["COILED_NAME"] or kept_name(name)
        kwargs["shutdown_on_close"] = False
        # Coiled ignores it without shutdown_on_close (the next run must find the cluster
        # when this client has gone); the idle timeout is what stops a kept cluster.
        del kwargs["no_client_timeout"]
    for optional in ("workspace", "region"):
        if settings[f"COILED_{optional.upper()}"]:
            kwargs[optional] = settings[f"COILED_{optional.upper()}"]
    require_credentials(environ)
    import coiled

    return ClusterSpec("coiled", name, coiled.Cluster, kwargs, start_cluster)


def kept_name(flow_name: str) -> str:
    """The stable name of the flow's kept cluster: ``<project>-<flow>`` in the letters Coiled
    allows in a name (rules.NAME); one too long is cut, and ends in a digest of the flow's
    name so that each flow keeps a cluster of its own."""
    name = re.sub(r"[^a-z0-9]+", "-", f"{PROJECT_TAG}-{flow_name}".lower()).strip("-")
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(flow_name.encode()).hexdigest()[:6]
    return f"{name[: NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def has_token() -> bool:
    """Whether Coiled's own configuration holds a token (``coiled login`` or DASK_COILED__TOKEN)."""
    import dask

    return bool(dask.config.get("coiled.token", None))


def interactive(environ: Mapping[str, str] | None = None, stdin: IO[Any] | None = None) -> bool:
    """A person at a terminal who can finish a browser login: stdin is a terminal and CI is not set."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    return not environ.get("CI") and stdin is not None and stdin.isatty()


def require_credentials(environ: Mapping[str, str] | None = None, stdin: IO[Any] | None = None) -> None:
    """Refuse before any cluster is created when Coiled would wait for a login nobody can give."""
    if has_token():
        return
    if not interactive(environ, stdin):
        raise CoiledLoginNeeded(f"no Coiled token, and no terminal to log in from: {LOGIN}; nothing was started")
    print(f"note: no Coiled token yet; Coiled's browser login follows (or stop and {LOGIN})", file=sys.stderr)


def start_cluster(spec: ClusterSpec) -> Any:
    """``coiled.Cluster(**kwargs)``; a failure to reach or be accepted by Coiled becomes CoiledUnavailable."""
    with reaching_coiled(spec.kwargs.get("workspace")):
        return spec.cluster_class(**spec.kwargs)


@contextmanager
def reaching_coiled(workspace: str | None) -> Iterator[None]:
    """Calls to Coiled inside the block: failing to reach Coiled, or to be accepted, raises CoiledUnavailable.

    Coiled answers a rejected token with its browser login, as if there were none, so
    without a terminal the token is checked first, by Coiled's own client with that
    retry turned off.
    """
    import dask
    from coiled.exceptions import AuthenticationError, PermissionsError

    server = dask.config.get("coiled.server", "Coiled's server")
    try:
        if not interactive():
            _check_token(server, workspace)
        yield
    except (AuthenticationError, PermissionsError) as error:
        logger.debug("Coiled refused the request", exc_info=True)
        raise CoiledUnavailable(
            f"Coiled at {server} refused the token ({error}); run `coiled login` again, or check {TOKEN_VARIABLE}"
        ) from None
    except OSError as error:  # aiohttp's connection errors are OSErrors
        logger.debug("Coiled cannot be reached", exc_info=True)
        raise CoiledUnavailable(
            f"Coiled at {server} cannot be reached ({type(error).__name__}: {error}); check the network, "
            "a proxy or firewall, and DASK_COILED__SERVER if you set it"
        ) from None


def _check_token(server: str, workspace: str | None) -> None:
    """Ask Coiled whether it accepts the token; AuthenticationError if not, never a login."""
    import asyncio

    import dask
    from coiled.utils import handle_credentials

    token = dask.config.get("coiled.token", None)
    asyncio.run(
        handle_credentials(
            server=server, token=token, workspace=workspace, save=False, retry=False, print_invalid_token_messages=False
        )
    )


def stop_command(name: str) -> str:
    """The command that stops one of the project's clusters."""
    return f"{PROG} clusters --stop {name}"


def list_call(workspace: str) -> dict[str, Any]:
    """Keyword arguments of ``coiled.list_clusters``: the workspace's clusters (its default when empty)."""
    return {"workspace": workspace} if workspace else {}


def stop_call(record: Mapping[str, Any], workspace: str) -> dict[str, Any]:
    """Keyword arguments of ``coiled.delete_cluster`` for the listed cluster ``record``, by its id:
    a name can belong to several clusters of the workspace's history."""
    return {"cluster_id": record["id"], **list_call(workspace)}


# The records are those of ``coiled.list_clusters`` (coiled.v2.core.Cloud._list_clusters_page,
# Coiled's /api/v2/clusters/account/<workspace>/): "id", "name", "created", "updated" and
# "current_state": {"state": ...}, as ``coiled cluster list`` (coiled.cli.cluster.list) and
# coiled.cli.cluster.utils.find_cluster read them.


def is_project_cluster(record: Mapping[str, Any]) -> bool:
    """Running, and tagged with this project or named as it names its clusters."""
    tags = record.get("tags") or {}
    ours = tags.get("project") == PROJECT_TAG or str(record.get("name", "")).startswith(f"{PROJECT_TAG}-")
    return ours and (record.get("current_state") or {}).get("state") not in ENDED_STATES


def age(created: str, now: datetime) -> str:
    """How long ago ``created`` (an ISO 8601 timestamp) was, in the two largest units."""
    import pendulum

    seconds = max(0, int((now - pendulum.parse(created)).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def link(record: Mapping[str, Any], server: str) -> str:
    """The cluster's dashboard when the record carries its scheduler's address (as Coiled's
    cluster details do, coiled.v2.core.Cloud._security), else Coiled's page of the cluster,
    which links to it (coiled.utils.get_details_url, what ``coiled cluster list`` shows)."""
    from coiled.utils import get_details_url

    dashboard = (record.get("scheduler") or {}).get("dashboard_address")
    return dashboard or get_details_url(server, None, record["id"])


def row(record: Mapping[str, Any], now: datetime, server: str) -> str:
    """One cluster: name, state, age, link."""
    state = (record.get("current_state") or {}).get("state") or "unknown"
    return f"{record['name']}  {state}  {age(record['created'], now)}  {link(record, server)}"


def clusters_command(stop: str | None, workspace: str, environ: Mapping[str, str] | None = None) -> str:
    """List the project's running clusters, or stop one (``stop`` is its name) or all (``ALL``); the lines to print.

    Refuses as ``run`` does: without a token and a terminal to log in from (CoiledLoginNeeded),
    and when Coiled cannot be reached or refuses the token (CoiledUnavailable); a name that
    is none of the project's running clusters is a ValueError.
    """
    import coiled
    import dask
    import pendulum

    where = f"project {PROJECT_TAG}" + (f" in workspace {workspace}" if workspace else "")
    require_credentials(environ)
    with reaching_coiled(workspace or None):
        records = [record for record in coiled.list_clusters(**list_call(workspace)) if is_project_cluster(record)]
        if stop is None:
            now, server = pendulum.now("UTC"), dask.config.get("coiled.server")
            return "\n".join(row(record, now, server) for record in records) or f"no running Coiled cluster of {where}"
        chosen = [record for record in records if stop in (ALL, record["name"])]
        if stop != ALL and not chosen:
            running = ", ".join(record["name"] for record in records) or "none"
            raise ValueError(f"--stop {stop}: no running Coiled cluster of {where} has that name (running: {running})")
        for record in chosen:
            coiled.delete_cluster(**stop_call(record, workspace))
    return "\n".join(f"stopped {record['name']}" for record in chosen) or f"no running Coiled cluster of {where}"
