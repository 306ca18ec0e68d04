"""Shared test setup: every test computes on the embedded cluster, offline."""

from __future__ import annotations

import os

from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

# Set before the flow modules are imported: their tasks read the retry delay then.
os.environ.setdefault(f"{ENV_PREFIX}RETRY_DELAY_SECONDS", "0")

import psutil  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def local_cluster_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the project default, tests never try to reach Coiled.

    The cluster is a real ``distributed.LocalCluster`` with its workers as threads of
    this process, which starts in a fraction of the time worker processes take
    (docs/design.md, "The embedded cluster"). Tests that ask for ``worker_processes``
    (or ``no_leftover_processes``) get the default, process-based cluster.
    """
    monkeypatch.setenv(f"{ENV_PREFIX}CLUSTER", "local")
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", "false")


@pytest.fixture(autouse=True)
def results_in_a_temporary_folder(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs keep their results (docs/resume.md) in a fresh folder of each test's own, never in the project,
    and restore nothing unless the test asks, whatever the environment says."""
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS", str(tmp_path_factory.mktemp("results")))
    monkeypatch.delenv(f"{ENV_PREFIX}RESUME", raising=False)


@pytest.fixture
def worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run this test's clusters with worker processes, as users' runs do by default."""
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", "true")


def _cluster_processes() -> list[psutil.Process]:
    """Child processes other than multiprocessing's resource tracker, which lives on by design."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def no_leftover_processes(worker_processes: None):
    """Fail the test if a scheduler or worker process outlives the flow run."""
    yield
    _, alive = psutil.wait_procs(_cluster_processes(), timeout=10)
    assert not alive, f"processes left running: {[p.cmdline() for p in alive]}"
