"""Every way a run can go wrong ends with its cluster closed and a message a user can act on.

These tests cover every flow in ``flows/``, each run with its declared ``smoke``
parameters: a new flow is covered the moment it exists. A failure is injected into
each task in turn (``flow.get_tasks`` returns the flow's own bound copy of a task,
whose ``run`` is replaced for one test). Runs go through ``flow.run`` itself, as in a
notebook or under ``prefect run``, so nothing but the project's machinery closes the
cluster. Every run uses a real LocalCluster, and ``cluster_closed`` fails a test that
leaves a scheduler or a worker running. Signals (Ctrl-C, SIGTERM, SIGHUP): test_signals.py.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import prefect
import pytest
from click.testing import CliRunner
from distributed import Scheduler, Worker
from distributed.core import Status
from prefect import Parameter, Task
from prefect.cli import cli as prefect_cli
from prefect.engine.state import Failed, Success
from prefect.tasks.core.resource_manager import ResourceCleanupTask

from {{ cookiecutter.package_name }}.plumbing import session
from {{ cookiecutter.package_name }}.plumbing.clusters import cluster_spec
from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration
from {{ cookiecutter.package_name }}.plumbing.registry import find_flow
from {{ cookiecutter.package_name }}.plumbing.retry import RETRY_DELAY_VAR, cluster_task_retries
from {{ cookiecutter.package_name }}.plumbing.runner import failure_message
from {{ cookiecutter.package_name }}.plumbing.session import ClusterSession, close_sessions
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, smoke_result

CLOSED = " closed transitions="  # the session's log line once a cluster is closed


def work_tasks(declaration: FlowDeclaration) -> list[Task]:
    """The flow's tasks apart from its parameters, in a stable order (every test process agrees on it)."""
    tasks = [task for task in declaration.flow.tasks if not isinstance(task, Parameter)]
    return sorted(tasks, key=lambda task: declaration.flow.slugs[task])


def injection_points(retried_only: bool = False) -> list[Any]:
    """Every task of every flow (or those that retry) as ``(flow name, task slug)`` test parameters."""
    return [
        pytest.param(name, declaration.flow.slugs[task], id=f"{name}:{declaration.flow.slugs[task]}")
        for name, declaration in FLOWS.items()
        for task in work_tasks(declaration)
        if task.max_retries or not retried_only
    ]


def task_by_slug(flow_name: str, slug: str) -> Task:
    flow = find_flow(flow_name).flow
    [task] = [task for task in flow.tasks if flow.slugs[task] == slug]
    return task


def is_mapped(flow_name: str, task: Task) -> bool:
    return any(edge.mapped for edge in find_flow(flow_name).flow.edges_to(task))


@pytest.fixture
def cluster_closed() -> Iterator[None]:
    """Fail the test if a scheduler or worker of this process is still running after it."""
    yield
    running = [
        f"{type(server).__name__} {server.address}"
        for server in [*Scheduler._instances, *Worker._instances]
        if server.status != Status.closed
    ]
    assert not running, f"left running: {running}"


@pytest.fixture
def one_worker_process(no_leftover_processes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes, as users' runs have (one per cluster: quicker to start); none may outlive the test."""
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", "1")


@pytest.fixture
def prefect_log(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """The run's log as text; it includes what the cluster sessions log when they open and close."""
    caplog.set_level(logging.INFO, logger="prefect")
    return lambda: caplog.text


def injected(label: str, record: Path, original: Callable[..., Any]) -> Callable[..., Any]:
    """A ``run`` that does the task's work, notes the attempt, then fails.

    Doing the work first means a failing ``dask_cluster.setup`` has a running cluster
    for the safety net to close. Built per test as a closure, so it travels by value to
    worker processes; attempts go to a file because a task on a worker cannot report
    back through memory.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        with record.open("a") as attempts:
            attempts.write(f"{prefect.context.get('task_run_count', 1)}\n")
        raise RuntimeError(f"injected into {label}")

    return run


def fails_first_attempt(original: Callable[..., Any], record: Path) -> Callable[..., Any]:
    """A ``run`` that fails on its first attempt, like a lost worker, and works on the retry."""

    def run(*args: Any, **kwargs: Any) -> Any:
        attempt = prefect.context.get("task_run_count", 1)
        with record.open("a") as attempts:
            attempts.write(f"{attempt}\n")
        if attempt == 1:
            raise ConnectionError("injected: worker lost")
        return original(*args, **kwargs)

    return run


def attempts_made(record: Path) -> list[int]:
    return sorted(int(line) for line in record.read_text().split()) if record.exists() else []


def test_the_project_has_flows_and_each_is_injected_everywhere() -> None:
    assert FLOWS, "flows/ declares no flow"
    points = {point.values for point in injection_points()}
    for name, declaration in FLOWS.items():
        assert {(name, declaration.flow.slugs[task]) for task in work_tasks(declaration)} <= points


@pytest.mark.parametrize(("flow_name", "slug"), injection_points())
def test_a_failing_task_fails_the_flow_names_itself_and_closes_the_cluster(
    flow_name: str,
    slug: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
) -> None:
    declaration, task = find_flow(flow_name), task_by_slug(flow_name, slug)
    record = tmp_path / "attempts"
    monkeypatch.setattr(task, "run", injected(slug, record, task.run))

    state = declaration.run(declaration.smoke)

    log = prefect_log()
    attempts = attempts_made(record)
    assert attempts, f"the smoke parameters of {flow_name} never ran {slug}: give ones that run every task"
    assert max(attempts) == task.max_retries + 1, "the retries were not used exactly"
    if isinstance(task, ResourceCleanupTask):
        # Prefect does not let a resource's cleanup decide the run: the work succeeded.
        assert isinstance(state, Success), failure_message(state, declaration.flow)
    else:
        assert isinstance(state, Failed)
        where = f"task {task.name!r}" + (" (map index 0)" if is_mapped(flow_name, task) else "")
        retried = f" ({task.max_retries + 1} attempts)" if task.max_retries else ""
        assert (
            failure_message(state, declaration.flow) == f"{where} failed: RuntimeError: injected into {slug}{retried}"
        )
    started, closed = log.count("dashboard="), log.count(CLOSED)
    assert started <= 1 and closed == started, f"{started} clusters started, {closed} closed:\n{log}"


@pytest.mark.parametrize(("flow_name", "slug"), injection_points(retried_only=True))
def test_a_transient_failure_is_retried_on_the_same_cluster(
    flow_name: str,
    slug: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
    one_worker_process: None,
) -> None:
    declaration, task = find_flow(flow_name), task_by_slug(flow_name, slug)
    expected = smoke_result(declaration)
    record = tmp_path / "attempts"
    caplog_start = len(prefect_log())
    monkeypatch.setattr(task, "run", fails_first_attempt(task.run, record))

    state = declaration.run(declaration.smoke)

    assert isinstance(state, Success), failure_message(state, declaration.flow)
    result = state.result[declaration.result].result
    assert repr(result) == repr(expected), "the retried run computed something else"
    attempts = attempts_made(record)
    assert attempts.count(1) == attempts.count(2) >= 1  # every element retried once
    log = prefect_log()[caplog_start:]
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "the retry must reuse the run's cluster"


def test_a_cluster_that_fails_to_close_is_named_and_the_others_still_close(
    monkeypatch: pytest.MonkeyPatch, prefect_log: Callable[[], str], cluster_closed: None
) -> None:
    logger = logging.getLogger("prefect.test")
    failing, other = (ClusterSession(cluster_spec("local", "some-flow"), logger) for _ in range(2))
    failing.open()
    other.open()
    name, really_close = failing.cluster.name, failing.cluster.close

    def close_then_fail() -> None:  # closes (so nothing is left running), then reports an error
        really_close()
        raise OSError("injected: cloud API unreachable")

    monkeypatch.setattr(failing.cluster, "close", close_then_fail)

    close_sessions("some-flow")

    assert f"could not close cluster {name} (backend=local): stop it by hand" in prefect_log()
    assert "OSError: injected: cloud API unreachable" in prefect_log()
    assert not other.is_open and prefect_log().count(CLOSED) == 1


def test_a_close_without_timeout_that_never_answers_is_given_up_on_and_named(
    monkeypatch: pytest.MonkeyPatch, prefect_log: Callable[[], str], cluster_closed: None
) -> None:
    """As ``coiled.Cluster.close`` (no ``timeout``) would behave if Coiled's API never answered."""
    import coiled

    assert "timeout" not in inspect.signature(coiled.Cluster.close).parameters
    monkeypatch.setattr(session, "CLOSE_TIMEOUT_SECONDS", 1)
    stuck = ClusterSession(cluster_spec("local", "some-flow"), logging.getLogger("prefect.test"))
    stuck.open()
    cluster, answer = stuck.cluster, threading.Event()

    def close_without_answer() -> None:
        answer.wait(60)

    monkeypatch.setattr(cluster, "close", close_without_answer)
    try:
        close_sessions("some-flow")
        assert f"could not close cluster {cluster.name} (backend=local): stop it by hand" in prefect_log()
        assert "TimeoutError: no answer to close within 1 s" in prefect_log()
    finally:
        answer.set()
        monkeypatch.undo()
        cluster.close()


def test_retry_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_DELAY_VAR, "2.5")
    assert cluster_task_retries()["retry_delay"] == timedelta(seconds=2.5)
    for bad in ("soon", "-1", "nan", "inf", "1e20"):
        monkeypatch.setenv(RETRY_DELAY_VAR, bad)
        with pytest.raises(ValueError, match=rf"^{RETRY_DELAY_VAR}: '{bad}' is not a number of seconds from 0 to "):
            cluster_task_retries()


def mistyped(declaration: FlowDeclaration) -> tuple[str, Any]:
    """A parameter given a value of another type than its default's."""
    name, default = next(iter(declaration.defaults.items()))
    return name, 7 if isinstance(default, str) else "seven"


@pytest.mark.parametrize("flow_name", FLOWS)
def test_prefect_run_rejects_bad_parameters_before_any_cluster(flow_name: str, cluster_closed: None) -> None:
    declaration = FLOWS[flow_name]
    name, value = mistyped(declaration)
    done = CliRunner().invoke(prefect_cli, ["run", "-p", declaration.source, "--param", f"{name}={json.dumps(value)}"])
    assert done.exit_code == 1, done.output
    assert f"{name}: {value!r} is not of type" in done.output and "Flow run failed!" in done.output
    assert "dashboard=" not in done.output
