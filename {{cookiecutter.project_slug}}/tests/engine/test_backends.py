"""The clusters other than Coiled's, bound to the real classes' signatures; the embedded cluster's
workers; the version check every connection makes.

The gateway's spec against a real dask-gateway is in ``test_gateway.py``, runs on a real
scheduler given by its address in ``test_attached_cluster.py``, Coiled in ``test_coiled.py``.
"""

from __future__ import annotations

import copy
import inspect
import sys
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}.plumbing.backends import (
    MUST_MATCH,
    VersionMismatchError,
    check_cluster_versions,
    find_mismatches,
)
from {{ cookiecutter.package_name }}.plumbing.plan import cluster_spec
from {{ cookiecutter.package_name }}.plumbing.rules import SettingError
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

ADDRESS = "tcp://127.0.0.1:8786"
UNSET = object()


def test_the_local_spec_binds_to_local_cluster() -> None:
    spec = cluster_spec("local", "some-flow", environ={})
    assert (spec.backend, spec.name, spec.cluster_class, spec.attached, spec.kept) == (
        "local",
        "some-flow",
        LocalCluster,
        False,
        False,
    )
    bound = inspect.signature(LocalCluster).bind(**spec.kwargs).arguments
    assert bound == {
        "n_workers": int(settings.LOCAL_N_WORKERS),
        "threads_per_worker": int(settings.LOCAL_THREADS_PER_WORKER),
        "processes": True,
        "dashboard_address": ":0",  # a free port: a second run never clashes
    }
    assert spec.hold_signals_at_start


def test_the_local_clusters_dask_settings_are_dasks_own() -> None:
    """A key dask renamed would be set and silently ignored."""
    spec = cluster_spec("local", "some-flow", environ={})
    for key in spec.dask_config:
        assert dask.config.get(key, UNSET) is not UNSET, f"{key} is not a dask setting"
    for preload in spec.dask_config["distributed.worker.preload"]:
        assert Path(preload).name == "local_workers.py" and Path(preload).is_file()


def test_an_address_spec_binds_to_client_with_the_bounded_connect() -> None:
    spec = cluster_spec(ADDRESS, "some-flow", environ={})
    assert spec.attached and spec.cluster_class is Client and not spec.kept
    bound = inspect.signature(Client).bind(**spec.kwargs, timeout=spec.connect_timeout).arguments
    assert bound == {"address": ADDRESS, "set_as_default": False, "timeout": spec.connect_timeout}
    assert spec.connect_timeout == float(settings.CONNECT_TIMEOUT_SECONDS)


def test_gateway_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_gateway", None)  # as if not installed: importing it fails
    with pytest.raises(
        SettingError,
        match=r'^--cluster gateway: the gateway extra is not installed: pip install -e "\.\[gateway\]"$',
    ):
        cluster_spec("gateway", "some-flow", environ={})


def _worker_log_lines() -> list[str]:
    """In a worker: log a lost heartbeat and another error through Dask's worker logger; what got out."""
    import logging

    from {{ cookiecutter.package_name }}.plumbing.local_workers import HEARTBEAT_LOST

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("distributed.worker")
    logger.addHandler(handler)
    try:
        try:
            raise OSError("stream closed")
        except OSError:
            logger.exception(HEARTBEAT_LOST)
        logger.error("any other worker error")
    finally:
        logger.removeHandler(handler)
    return seen


def test_local_workers_drop_only_the_lost_heartbeat_of_a_closing_cluster() -> None:
    """A real worker process, preloaded as the spec's dask settings say when the spec starts it."""
    environ = {f"{ENV_PREFIX}LOCAL_N_WORKERS": "1", f"{ENV_PREFIX}LOCAL_PROCESSES": "true"}
    with cluster_spec("local", "some-flow", environ=environ).start() as cluster:
        with Client(cluster, set_as_default=False) as client:
            # ``callback_timeout`` bounds the wait; the client's sync layer takes it, not the function.
            seen = client.run(_worker_log_lines, callback_timeout=60)
    assert list(seen.values()) == [["any other worker error"]]


@pytest.fixture(scope="module")
def real_versions() -> dict:
    """Versions as a cluster reports them; a worker thread of this process reports the same as a worker process."""
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
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

    class Reporting:
        """Stands in for a connected client: the versions a real cluster reported, one changed."""

        def get_versions(self) -> dict:
            return versions

    with pytest.raises(VersionMismatchError, match=r"dask: this machine has .*, scheduler has 1999.1.0"):
        check_cluster_versions(Reporting())
