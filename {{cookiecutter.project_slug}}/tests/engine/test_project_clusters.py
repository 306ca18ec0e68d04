"""``clusters``: the calls it makes bind to the real coiled functions, and its rows read the records they return.

Nothing here reaches Coiled: the calls' arguments come from the functions the command
uses, bound to ``coiled.list_clusters`` and ``coiled.delete_cluster``'s own signatures;
the refusals without a token or without Coiled are in ``test_coiled_access.py``.
"""

from __future__ import annotations

import inspect

import pendulum
import pytest

from {{ cookiecutter.package_name }}.plumbing.project_clusters import (
    age,
    is_project_cluster,
    list_call,
    row,
    stop_call,
    stop_command,
)
from {{ cookiecutter.package_name }}.settings import PROJECT_TAG

from flowkit import PACKAGE

SERVER = "https://cloud.coiled.io"
# A record as coiled.list_clusters returns it (coiled.v2.core.Cloud._list_clusters_page; the
# fields ``coiled cluster list`` and coiled.cli.cluster.utils.find_cluster read).
RECORD = {
    "id": 81234,
    "name": f"{PROJECT_TAG}-timeseries",
    "created": "2026-12-03T08:00:00.123456+00:00",
    "updated": "2026-12-03T08:03:10.000000+00:00",
    "current_state": {"state": "ready", "reason": "", "updated": "2026-12-03T08:03:10.000000+00:00"},
}
NOW = pendulum.parse("2026-12-03T10:05:30+00:00")
DASHBOARD = "https://203.0.113.7:8787/status"
OURS = {"project": PROJECT_TAG, "flow": "timeseries"}
THEIRS = {"project": "other-project"}


def state(name: str) -> dict[str, str]:
    return {"state": name}


@pytest.mark.parametrize("workspace", ["", "team-ws"])
def test_the_calls_bind_to_the_real_coiled_functions(workspace: str) -> None:
    import coiled

    listing = inspect.signature(coiled.list_clusters).bind(**list_call(workspace)).arguments
    stopping = inspect.signature(coiled.delete_cluster).bind(**stop_call(RECORD, workspace)).arguments
    assert listing.get("workspace", "") == stopping.get("workspace", "") == workspace
    assert stopping["cluster_id"] == RECORD["id"] and "name" not in stopping  # by id: names repeat in a history


def test_a_row_shows_name_state_age_and_a_link() -> None:
    assert row(RECORD, NOW, SERVER) == f"{PROJECT_TAG}-timeseries  ready  2h 05m  {SERVER}/clusters/81234"
    scheduler = {"dashboard_address": DASHBOARD}
    assert row({**RECORD, "scheduler": scheduler}, NOW, SERVER).endswith(f"  {DASHBOARD}")


@pytest.mark.parametrize(
    ("created", "shown"),
    [
        ("2026-12-03T10:05:00Z", "0m"),
        ("2026-12-03T09:50:29.5+00:00", "15m"),
        ("2026-11-30T06:00:00+00:00", "3d 4h"),
        ("2026-12-03T11:00:00+00:00", "0m"),  # a clock ahead of this one's
    ],
)
def test_age_reads_coileds_timestamps(created: str, shown: str) -> None:
    assert age(created, NOW) == shown


@pytest.mark.parametrize(
    ("change", "ours"),
    [
        ({}, True),
        ({"name": "nightly", "tags": OURS}, True),  # COILED_NAME
        ({"name": "other-project-timeseries", "tags": THEIRS}, False),
        ({"current_state": state("stopped")}, False),
        ({"current_state": state("error")}, False),
        ({"current_state": state("pending")}, True),
    ],
)
def test_the_project_clusters_are_its_running_ones(change: dict, ours: bool) -> None:
    assert is_project_cluster({**RECORD, **change}) is ours


def test_the_stop_command_is_this_projects() -> None:
    assert stop_command("x") == f"python -m {PACKAGE} clusters --stop x"
