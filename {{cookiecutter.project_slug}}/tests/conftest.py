"""Shared test setup: every test computes on the embedded cluster, offline, records its runs outside
the project and alerts nobody."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

# Set before the flow modules are imported: their tasks read the retry delay then.
os.environ.setdefault(f"{ENV_PREFIX}RETRY_DELAY_SECONDS", "0")
# A webhook of the user's own would hear of every failure the tests make on purpose. Prefect
# reads its secret when it is imported, so this comes first.
os.environ.pop(f"{ENV_PREFIX}SLACK_WEBHOOK_URL", None)
os.environ.pop("PREFECT__CONTEXT__SECRETS__SLACK_WEBHOOK_URL", None)

import psutil  # noqa: E402
import pytest  # noqa: E402

if TYPE_CHECKING:  # flowkit imports the flows, and Prefect: not before pytest has set up its log capture
    from flowkit import Webhook


@pytest.fixture(autouse=True, scope="session")
def history_outside_the_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The runs the tests make are recorded in a file of their own (per test session), never in
    the project's run history."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"{ENV_PREFIX}HISTORY", str(tmp_path_factory.mktemp("history") / "runs.sqlite"))
        yield


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own run history file (commands started from the test inherit it)."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv(f"{ENV_PREFIX}HISTORY", str(path))
    return path


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    """A webhook on loopback that accepts every post, set as this test's alert target."""
    from flowkit import Webhook

    with Webhook() as receiver:
        monkeypatch.setenv(f"{ENV_PREFIX}SLACK_WEBHOOK_URL", receiver.url)
        yield receiver


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
