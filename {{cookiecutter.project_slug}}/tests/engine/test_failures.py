"""Every way a run can go wrong ends with its cluster closed and a message a user can act on.

These tests cover every flow in ``flows/``, each run with its declared smoke parameters
(made in the test's own folder): a new flow is covered the moment it exists. A failure
is injected into each task in turn (``flow.get_tasks`` returns the flow's own bound copy
of a task, whose ``run`` is replaced for one test). Runs go through ``flow.run`` itself,
as in a notebook or under ``prefect run``, so nothing but the project's machinery plans
the run and closes the cluster. Every run uses a real LocalCluster, and ``cluster_closed``
fails a test that leaves a scheduler or a worker running.

Retries (``cluster_task_retries``) are only for failures that could pass: a lost
connection or worker is retried ``max_retries`` times, on the run's one cluster; a bug
or bad data (``RuntimeError``, ``ValueError``, a missing file, a full disk) fails at once.
Signals (Ctrl-C, SIGTERM, SIGHUP): test_signals.py.
"""

from __future__ import annotations

import errno
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
from distributed.scheduler import KilledWorker
from prefect import Parameter, Task
from prefect.cli import cli as prefect_cli
from prefect.engine.state import Failed, Success
from prefect.tasks.core.resource_manager import ResourceCleanupTask

from {{ cookiecutter.package_name }}.plumbing import backends, session
from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration, find_flow
from {{ cookiecutter.package_name }}.plumbing.flow import cluster_task_retries, passing
from {{ cookiecutter.package_name }}.plumbing.plan import plan_command
from {{ cookiecutter.package_name }}.plumbing.run import failure_message
from {{ cookiecutter.package_name }}.plumbing.session import ClusterSession, close_sessions, end_run
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, TASK_RETRIES

from flowkit import FLOWS, smoke_result

CLOSED = " closed transitions="  # the session's log line once a cluster is closed
RETRY_DELAY_VAR = f"{ENV_PREFIX}RETRY_DELAY_SECONDS"
ErrorFactory = Callable[[str], BaseException]


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


def first_retried_task(name: str) -> list[Any]:
    """The flow's first task that retries, as a ``(flow name, task slug)`` test parameter (none if none retries)."""
    declaration = FLOWS[name]
    retried = [task for task in work_tasks(declaration) if task.max_retries]
    return [
        pytest.param(name, declaration.flow.slugs[task], id=f"{name}:{declaration.flow.slugs[task]}")
        for task in retried[:1]
    ]


def task_by_slug(flow_name: str, slug: str) -> Task:
    flow = find_flow(flow_name).flow
    [task] = [task for task in flow.tasks if flow.slugs[task] == slug]
    return task


def is_mapped(flow_name: str, task: Task) -> bool:
    return any(edge.mapped for edge in find_flow(flow_name).flow.edges_to(task))


def where(flow_name: str, task: Task) -> str:
    """How a failure message names the task (its first map child, for a mapped task)."""
    return f"task {task.name!r}" + (" (map index 0)" if is_mapped(flow_name, task) else "")


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


@pytest.fixture
def cluster_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every cluster started (or connected to) during the test; they still start for real."""
    started: list[str] = []
    real_start = backends.ClusterSpec.start

    def counted_start(spec: backends.ClusterSpec) -> Any:
        started.append(spec.name)
        return real_start(spec)

    monkeypatch.setattr(backends.ClusterSpec, "start", counted_start)
    return started


def injected(label: str, record: Path, original: Callable[..., Any], error: ErrorFactory = RuntimeError) -> Any:
    """A ``run`` that does the task's work, notes the attempt, then fails with ``error``, on every attempt.

    Doing the work first means a failing ``dask_cluster.setup`` has a running cluster
    for the safety net to close. Built per test as a closure, so it travels by value to
    worker processes; attempts go to a file because a task on a worker cannot report
    back through memory.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        with record.open("a") as attempts:
            attempts.write(f"{prefect.context.get('task_run_count', 1)}\n")
        raise error(f"injected into {label}")

    return run


def fails_first_attempt(original: Callable[..., Any], record: Path) -> Callable[..., Any]:
    """A ``run`` that fails on its first attempt, like a lost connection, and works on the retry."""

    def run(*args: Any, **kwargs: Any) -> Any:
        attempt = prefect.context.get("task_run_count", 1)
        with record.open("a") as attempts:
            attempts.write(f"{attempt}\n")
        if attempt == 1:
            raise ConnectionError("injected: connection to a worker lost")
        return original(*args, **kwargs)

    return run


def attempts_made(record: Path) -> list[int]:
    return sorted(int(line) for line in record.read_text().split()) if record.exists() else []


def not_retried_line(task: Task, error: BaseException) -> str:
    return f"Task '{task.name}': not retried: {type(error).__name__} fails the same way on every attempt"


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
    """A bug (RuntimeError) fails the run at its first attempt, even in a task that retries."""
    declaration, task = find_flow(flow_name), task_by_slug(flow_name, slug)
    record = tmp_path / "attempts"
    parameters = declaration.smoke_parameters(tmp_path)
    monkeypatch.setattr(task, "run", injected(slug, record, task.run))

    state = declaration.run(parameters)

    log = prefect_log()
    attempts = attempts_made(record)
    assert attempts, f"the smoke parameters of {flow_name} never ran {slug}: give ones that run every task"
    assert set(attempts) == {1}, f"a RuntimeError was retried: attempts {attempts}"
    if task.max_retries:
        assert not_retried_line(task, RuntimeError()) in log, log
    if isinstance(task, ResourceCleanupTask):
        # Prefect does not let a resource's cleanup decide the run: the work succeeded.
        assert isinstance(state, Success), failure_message(state, declaration.flow)
    else:
        assert isinstance(state, Failed)
        assert failure_message(state, declaration.flow) == (
            f"{where(flow_name, task)} failed: RuntimeError: injected into {slug}"
        )
    started, closed = log.count("dashboard="), log.count(CLOSED)
    assert started <= 1 and closed == started, f"{started} clusters started, {closed} closed:\n{log}"


@pytest.mark.parametrize(("flow_name", "slug"), injection_points(retried_only=True))
def test_a_connection_error_that_keeps_failing_is_retried_and_the_message_counts_the_attempts(
    flow_name: str,
    slug: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
) -> None:
    declaration, task = find_flow(flow_name), task_by_slug(flow_name, slug)
    record = tmp_path / "attempts"
    parameters = declaration.smoke_parameters(tmp_path)
    monkeypatch.setattr(task, "run", injected(slug, record, task.run, ConnectionError))

    state = declaration.run(parameters)

    attempts = attempts_made(record)
    runs = task.max_retries + 1
    assert max(attempts) == runs and attempts.count(1) == attempts.count(runs), f"attempts {attempts}"
    assert isinstance(state, Failed)
    assert failure_message(state, declaration.flow) == (
        f"{where(flow_name, task)} failed: ConnectionError: injected into {slug} ({runs} attempts)"
    )
    log = prefect_log()
    assert "not retried" not in log
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "every attempt must use the run's one cluster"


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
    (tmp_path / "expected").mkdir()
    (tmp_path / "retried").mkdir()
    expected = smoke_result(declaration, tmp_path / "expected")
    record = tmp_path / "attempts"
    log_start = len(prefect_log())
    parameters = declaration.smoke_parameters(tmp_path / "retried")
    monkeypatch.setattr(task, "run", fails_first_attempt(task.run, record))

    state = declaration.run(parameters)

    assert isinstance(state, Success), failure_message(state, declaration.flow)
    result = state.result[declaration.result].result
    assert repr(result) == repr(expected), "the retried run computed something else"
    attempts = attempts_made(record)
    assert attempts.count(1) == attempts.count(2) >= 1 and max(attempts) == 2  # every element retried once
    log = prefect_log()[log_start:]
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "the retry must reuse the run's cluster"


LASTING = [
    pytest.param(ValueError, id="ValueError"),
    pytest.param(TypeError, id="TypeError"),
    pytest.param(FileNotFoundError, id="FileNotFoundError"),
    pytest.param(lambda text: OSError(errno.ENOSPC, f"No space left on device ({text})"), id="ENOSPC"),
]


@pytest.mark.parametrize("error", LASTING)
@pytest.mark.parametrize(("flow_name", "slug"), [point for name in FLOWS for point in first_retried_task(name)])
def test_a_lasting_error_is_not_retried(
    flow_name: str,
    slug: str,
    error: ErrorFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
) -> None:
    """Bad data, a bug, a missing file or a full disk fail the same way every time: one attempt, said so."""
    declaration, task = find_flow(flow_name), task_by_slug(flow_name, slug)
    record = tmp_path / "attempts"
    parameters = declaration.smoke_parameters(tmp_path)
    monkeypatch.setattr(task, "run", injected(slug, record, task.run, error))

    state = declaration.run(parameters)

    raised = error(f"injected into {slug}")
    assert set(attempts_made(record)) == {1}, "a lasting error was retried"
    assert isinstance(state, Failed)
    assert failure_message(state, declaration.flow) == (
        f"{where(flow_name, task)} failed: {type(raised).__name__}: {raised}"
    )
    log = prefect_log()
    assert not_retried_line(task, raised) in log, log
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), log


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionError("reset"), True),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
        (TimeoutError("no answer"), True),
        (OSError(errno.EIO, "input/output error"), True),
        (KilledWorker("inc-0", None, 3), True),
        (RuntimeError("a bug"), False),
        (ValueError("bad data"), False),
        (TypeError("a bug"), False),
        (KeyError("missing"), False),
        (FileNotFoundError(errno.ENOENT, "no such file"), False),
        (PermissionError(errno.EACCES, "denied"), False),
        (IsADirectoryError(errno.EISDIR, "a folder"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError(errno.EACCES, "denied"), False),
    ],
    ids=lambda value: (
        str(value) if isinstance(value, bool) else type(value).__name__ + str(getattr(value, "errno", ""))
    ),
)
def test_only_failures_that_could_pass_are_retried(error: BaseException, retried: bool) -> None:
    assert passing(error) is retried


def test_a_cluster_that_fails_to_close_is_named_and_the_others_still_close(
    monkeypatch: pytest.MonkeyPatch, prefect_log: Callable[[], str], cluster_closed: None
) -> None:
    logger = logging.getLogger("prefect.test")
    plan = plan_command("some-flow", "local")
    failing, other = (ClusterSession(plan, logger) for _ in range(2))
    failing.open()
    other.open()
    name, really_close = failing.cluster.name, failing.cluster.close

    def close_then_fail() -> None:  # closes (so nothing is left running), then reports an error
        really_close()
        raise OSError("injected: cloud API unreachable")

    monkeypatch.setattr(failing.cluster, "close", close_then_fail)

    close_sessions(plan.run_id)
    ended, interrupt = end_run(plan.run_id)

    log = prefect_log()
    assert f"could not close cluster {name} (backend=local): stop it by hand" in log
    assert "OSError: injected: cloud API unreachable" in log
    assert not failing.is_open and not other.is_open and log.count(CLOSED) == 1, log
    assert {id(session) for session in ended} == {id(failing), id(other)} and interrupt is None


def test_closing_one_runs_clusters_leaves_another_runs_open(cluster_closed: None) -> None:
    logger = logging.getLogger("prefect.test")
    mine, theirs = plan_command("some-flow", "local"), plan_command("some-flow", "local")
    closed, still_open = ClusterSession(mine, logger), ClusterSession(theirs, logger)
    closed.open()
    still_open.open()
    try:
        end_run(mine.run_id)
        assert not closed.is_open and still_open.is_open
    finally:
        end_run(theirs.run_id)
    assert not still_open.is_open


def test_a_close_without_timeout_that_never_answers_is_given_up_on_and_named(
    monkeypatch: pytest.MonkeyPatch, prefect_log: Callable[[], str], cluster_closed: None
) -> None:
    """As ``coiled.Cluster.close`` (no ``timeout``) would behave if Coiled's API never answered."""
    import coiled

    assert "timeout" not in inspect.signature(coiled.Cluster.close).parameters
    monkeypatch.setattr(session, "CLOSE_TIMEOUT_SECONDS", 1)
    plan = plan_command("some-flow", "local")
    stuck = ClusterSession(plan, logging.getLogger("prefect.test"))
    stuck.open()
    cluster, answer = stuck.cluster, threading.Event()

    def close_without_answer() -> None:
        answer.wait(60)

    monkeypatch.setattr(cluster, "close", close_without_answer)
    try:
        close_sessions(plan.run_id)
        assert f"could not close cluster {cluster.name} (backend=local): stop it by hand" in prefect_log()
        assert "TimeoutError: no answer to close within 1 s" in prefect_log()
    finally:
        answer.set()
        monkeypatch.undo()
        cluster.close()
        end_run(plan.run_id)


def test_retry_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(RETRY_DELAY_VAR, "2.5")
    retries = cluster_task_retries()
    assert (retries["retry_delay"], retries["max_retries"]) == (timedelta(seconds=2.5), TASK_RETRIES)
    for bad in ("soon", "-1", "nan", "inf", "1e20", "٣"):
        monkeypatch.setenv(RETRY_DELAY_VAR, bad)
        with pytest.raises(ValueError, match=rf"^{RETRY_DELAY_VAR}: '{bad}' is not a number of seconds from 0 to "):
            cluster_task_retries()
    # While ``prefect run -p`` loads a flow file: one line and exit 2, not Prefect's traceback.
    with prefect.context(loading_flow=True), pytest.raises(SystemExit) as exited:
        cluster_task_retries()
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {RETRY_DELAY_VAR}: '٣' is not a number of seconds from 0 to 3600"
    ]


def mistyped(declaration: FlowDeclaration) -> tuple[str, Any]:
    """A parameter given a value of another type than its default's."""
    name, default = next(iter(declaration.defaults.items()))
    return name, 7 if isinstance(default, str) else "seven"


@pytest.mark.parametrize("flow_name", FLOWS)
def test_prefect_run_rejects_bad_parameters_before_any_cluster(
    flow_name: str, cluster_starts: list[str], cluster_closed: None
) -> None:
    declaration = FLOWS[flow_name]
    name, value = mistyped(declaration)
    done = CliRunner().invoke(prefect_cli, ["run", "-p", declaration.source, "--param", f"{name}={json.dumps(value)}"])
    assert done.exit_code == 2, done.output
    errors = [line for line in done.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {name}: {value!r} is not of type "), done.output
    assert "Traceback" not in done.output and "Flow run failed" not in done.output, done.output
    assert cluster_starts == [], "a cluster started for a run that was refused"
