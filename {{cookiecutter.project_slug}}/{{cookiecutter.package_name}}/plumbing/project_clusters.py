"""``clusters``: the project's running Coiled clusters, listed or stopped with the coiled client's own functions.

Kept clusters (``run --keep``) run on between runs until their idle timeout, and a
cluster whose run was killed outright runs until its no-client timeout: this command
shows them with their age and a link, and stops them, without a visit to Coiled's web
page. The project's clusters are the ones it tags ``project=<PROJECT_TAG>`` and names
``<PROJECT_TAG>-...`` when it starts them (``clusters.coiled_cluster_kwargs``). The
calls' arguments are built by small functions of their own, so the tests can bind them
to the real coiled functions' signatures without reaching Coiled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pendulum

from ..settings import COILED_DEFAULTS, PROJECT_TAG
from .coiled_access import reaching_coiled, require_credentials
from .overrides import read_setting

PROG = f"python -m {__package__.partition('.')[0]}"
ALL = ""  # ``--stop`` without a name: every running cluster of the project
# coiled.v2.states.ClusterStateEnum: the states of a cluster that is gone or going.
ENDED_STATES = ("stopping", "stopped", "error")


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


def clusters_command(stop: str | None, environ: Mapping[str, str] | None = None) -> str:
    """List the project's running clusters, or stop one (``stop`` is its name) or all (``ALL``); the lines to print.

    Refuses as ``run`` does: without a token and a terminal to log in from (CoiledLoginNeeded),
    and when Coiled cannot be reached or refuses the token (CoiledUnavailable); a name that
    is none of the project's running clusters is a ValueError.
    """
    import coiled
    import dask

    environ = os.environ if environ is None else environ
    workspace = str(read_setting("COILED_WORKSPACE", COILED_DEFAULTS["workspace"], environ))
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
