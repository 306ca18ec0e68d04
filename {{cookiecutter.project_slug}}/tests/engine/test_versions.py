"""Version agreement between this machine and a cluster."""

from __future__ import annotations

import copy

import pytest
from distributed import Client, LocalCluster

from {{ cookiecutter.package_name }}.plumbing.versions import (
    MUST_MATCH,
    VersionMismatchError,
    check_cluster_versions,
    find_mismatches,
)


@pytest.fixture(scope="module")
def real_versions() -> dict:
    """Versions as a cluster reports them; a worker thread of this process reports the same as a worker process."""
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:
        check_cluster_versions(client)  # a cluster from this environment always agrees
        return client.get_versions()


def test_a_cluster_from_this_environment_has_no_mismatch(real_versions: dict) -> None:
    assert find_mismatches(real_versions) == []
    assert set(MUST_MATCH) <= set(real_versions["client"]["packages"])


@pytest.mark.parametrize("package", MUST_MATCH)
def test_a_worker_with_another_version_is_named(real_versions: dict, package: str) -> None:
    versions = copy.deepcopy(real_versions)
    [worker] = versions["workers"]
    versions["workers"][worker]["packages"][package] = "0.0.1"  # python compares as 0.0
    [problem] = find_mismatches(versions)
    assert problem.startswith(f"{package}: this machine has ") and f"worker {worker} has 0.0" in problem


def test_python_patch_releases_may_differ(real_versions: dict) -> None:
    versions = copy.deepcopy(real_versions)
    versions["scheduler"]["packages"]["python"] = versions["client"]["packages"]["python"].rsplit(".", 1)[0] + ".99"
    assert find_mismatches(versions) == []


def test_mismatch_stops_with_a_clear_message(real_versions: dict) -> None:
    versions = copy.deepcopy(real_versions)
    versions["scheduler"]["packages"]["dask"] = "1999.1.0"

    class Connected:
        def get_versions(self) -> dict:
            return versions

    with pytest.raises(VersionMismatchError, match=r"dask: this machine has .*, scheduler has 1999.1.0"):
        check_cluster_versions(Connected())
