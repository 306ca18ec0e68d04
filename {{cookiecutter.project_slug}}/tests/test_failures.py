"""Every way a run can go wrong ends with its cluster closed and a message a user can act on.

A failure is injected into each task of each flow in turn: ``flow.get_tasks`` returns the
flow's own (bound) copy of a task, whose ``run`` is replaced for one test. Runs go
through ``flow.run`` itself, as in a notebook or under ``prefect run``, so nothing but
the flow's own machinery closes the cluster. Every run uses a real LocalCluster, and
``cluster_closed`` fails a test that leaves a scheduler or a worker running; the runs
that also have worker processes check that none outlives them. Ctrl-C is a real SIGINT
sent to the command line running in a subprocess.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import prefect
import psutil
import pytest
from click.testing import CliRunner
from distributed import Scheduler, Worker
from distributed.core import Status
from prefect import Parameter
from prefect.cli import cli as prefect_cli
from prefect.engine.state import Failed, Success

from {{ cookiecutter.package_name }} import ENV_PREFIX
from {{ cookiecutter.package_name }}.clusters import cluster_spec
from {{ cookiecutter.package_name }}.flows import FLOWS, load_flow_module
from {{ cookiecutter.package_name }}.retry import RETRY_DELAY_VAR, cluster_task_retries
from {{ cookiecutter.package_name }}.runner import failure_message
from {{ cookiecutter.package_name }}.session import ClusterSession, close_sessions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLOSED = " closed transitions="  # the session's log line once a cluster is closed
# The smallest inputs that still run every task.
TINY: dict[str, dict[str, Any]] = {
    "timeseries": {"start": "2000-01-01", "end": "2000-01-02", "freq": "1h", "partition_freq": "12h"},
    "inc-double-add-sum": {"n": 2, "batch_size": 1},
}
# flow, task, how the message points at it, attempts (retries included), clusters started.
INJECTED = [
{%- if cookiecutter.executor != "DaskExecutor" %}
    ("timeseries", "check_parameters", "task 'check_parameters'", 1, 0),
    ("timeseries", "dask_cluster", "task 'dask_cluster'", 1, 0),
    ("timeseries", "dask_cluster.setup", "task 'dask_cluster.setup'", 1, 1),
    ("timeseries", "load_data", "task 'load_data'", 1, 1),
    ("timeseries", "summarize", "task 'summarize'", 3, 1),
    ("timeseries", "log_summary", "task 'log_summary'", 1, 1),
{%- endif %}
{%- if cookiecutter.executor != "LocalExecutor" %}
    ("inc-double-add-sum", "split", "task 'split'", 1, 1),
    ("inc-double-add-sum", "inc", "task 'inc' (map index 0)", 3, 1),
    ("inc-double-add-sum", "double", "task 'double' (map index 0)", 3, 1),
    ("inc-double-add-sum", "add", "task 'add' (map index 0)", 3, 1),
    ("inc-double-add-sum", "sum_all", "task 'sum_all'", 3, 1),
{%- endif %}
]
# A setup that fails before starting anything is harmless; this one fails once its
# cluster is up, so the flow's safety net has a running cluster to close.
FAILS_AFTER_ITS_WORK = {"dask_cluster.setup"}
# Prefect does not let a resource's cleanup decide the flow's state: it has its own test.
CLEANUP = {{ '{"timeseries": "dask_cluster.cleanup"}' if cookiecutter.executor != "DaskExecutor" else "{}" }}
# One run per flow has worker processes, as users' runs do: the timeseries flow when its
# retries run out, the mapped flow in its transient-failure test. The rest use the
# suite's quicker cluster of worker threads, where ``cluster_closed`` sees any worker
# left running just as well.
WITH_WORKER_PROCESSES = {("timeseries", "summarize")}


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


def injected(task_name: str, record: Path, original: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A ``run`` that notes the attempt and fails, after calling ``original`` if given.

    Built per test as a closure, so it travels by value to worker processes; attempts go
    to a file because a task on a worker cannot report back through memory.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        with record.open("a") as attempts:
            attempts.write(f"{prefect.context.get('task_run_count', 1)}\n")
        if original is not None:
            original(*args, **kwargs)
        raise RuntimeError(f"injected into {task_name}")

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


def replace_run(monkeypatch: pytest.MonkeyPatch, flow_name: str, task_name: str, make: Callable[..., Any]) -> None:
    [task] = load_flow_module(flow_name).flow.get_tasks(name=task_name)
    monkeypatch.setattr(task, "run", make(task.run))


def attempts_made(record: Path) -> list[int]:
    return sorted(int(line) for line in record.read_text().split())


@pytest.mark.parametrize("flow_name", sorted(FLOWS))
def test_every_task_of_every_flow_is_injected(flow_name: str) -> None:
    tasks = {task.name for task in load_flow_module(flow_name).flow.tasks if not isinstance(task, Parameter)}
    covered = {task for flow, task, *_ in INJECTED if flow == flow_name}
    assert tasks == covered | ({CLEANUP[flow_name]} if flow_name in CLEANUP else set())


@pytest.mark.parametrize(("flow_name", "task_name", "where", "attempts", "clusters"), INJECTED)
def test_a_failing_task_fails_the_flow_names_itself_and_closes_the_cluster(
    flow_name: str,
    task_name: str,
    where: str,
    attempts: int,
    clusters: int,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
    request: pytest.FixtureRequest,
) -> None:
    if (flow_name, task_name) in WITH_WORKER_PROCESSES:
        request.getfixturevalue("one_worker_process")
    record = tmp_path / "attempts"
    after = task_name in FAILS_AFTER_ITS_WORK
    replace_run(monkeypatch, flow_name, task_name, lambda run: injected(task_name, record, run if after else None))
    module = load_flow_module(flow_name)

    state = module.run(None, TINY[flow_name])

    assert isinstance(state, Failed)
    retried = f" ({attempts} attempts)" if attempts > 1 else ""
    assert failure_message(state, module.flow) == f"{where} failed: RuntimeError: injected into {task_name}{retried}"
    assert max(attempts_made(record)) == attempts, "the retries were not used exactly"
    log = prefect_log()
    assert (log.count("dashboard="), log.count(CLOSED)) == (clusters, clusters), log
{%- if cookiecutter.executor != "DaskExecutor" %}


def test_a_failing_cleanup_is_logged_and_the_cluster_still_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_log: Callable[[], str], cluster_closed: None
) -> None:
    record = tmp_path / "attempts"
    replace_run(monkeypatch, "timeseries", "dask_cluster.cleanup", lambda run: injected("cleanup", record))
    module = load_flow_module("timeseries")

    state = module.run(None, TINY["timeseries"])

    assert isinstance(state, Success), "the summary was computed and logged: the flow's work succeeded"
    assert attempts_made(record) == [1]
    log = prefect_log()
    assert "RuntimeError: injected into cleanup" in log
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "close_when_finished must close it instead"


def test_timeseries_survives_a_transient_failure_on_one_cluster(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
) -> None:
    record = tmp_path / "attempts"
    replace_run(monkeypatch, "timeseries", "summarize", lambda original: fails_first_attempt(original, record))

    state = load_flow_module("timeseries").run(None, TINY["timeseries"])

    assert isinstance(state, Success), failure_message(state, load_flow_module("timeseries").flow)
    [summarize] = load_flow_module("timeseries").flow.get_tasks(name="summarize")
    assert state.result[summarize].result["id_count"].sum() == 24  # one day of hourly rows
    assert attempts_made(record) == [1, 2]
    log = prefect_log()
    assert "Task 'summarize': Finished task run for task with final state: 'Retrying'" in log
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "the retry must reuse the run's cluster"
{%- endif %}
{%- if cookiecutter.executor != "LocalExecutor" %}


def test_mapped_flow_survives_a_transient_failure_on_one_cluster(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_log: Callable[[], str],
    cluster_closed: None,
    one_worker_process: None,
) -> None:
    record = tmp_path / "attempts"
    replace_run(monkeypatch, "inc-double-add-sum", "inc", lambda original: fails_first_attempt(original, record))
    module = load_flow_module("inc-double-add-sum")

    state = module.run(None, TINY["inc-double-add-sum"])

    assert isinstance(state, Success), failure_message(state, module.flow)
    assert state.result[module.RESULT_TASK].result == module.expected_total(2)
    assert attempts_made(record) == [1, 1, 2, 2]  # both mapped elements, each retried once
    log = prefect_log()
    assert (log.count("dashboard="), log.count(CLOSED)) == (1, 1), "the retry must reuse the run's cluster"
{%- endif %}


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


def test_retry_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_DELAY_VAR, "2.5")
    assert cluster_task_retries() == {"max_retries": 2, "retry_delay": timedelta(seconds=2.5)}
    monkeypatch.setenv(RETRY_DELAY_VAR, "soon")
    with pytest.raises(ValueError, match=rf"^{RETRY_DELAY_VAR}: 'soon' is not a number of seconds >= 0$"):
        cluster_task_retries()


# Bad parameters under ``prefect run -p``: the flow fails before any cluster starts.
BAD_PARAMETERS = [
{%- if cookiecutter.executor != "DaskExecutor" %}
    ("timeseries", ["--param", "freq=1H"], "freq: '1H' is not a frequency pandas accepts"),
    ("timeseries", ["--param", "end=2000-01-01T02:00"], "partition_freq: 'auto' finds none of 6D,"),
{%- endif %}
{%- if cookiecutter.executor != "LocalExecutor" %}
    ("inc-double-add-sum", ["--param", "n=-1"], "n: -1 is not a whole number >= 0"),
    ("inc-double-add-sum", ["--param", "batch_size=0"], "batch_size: 0 is not a whole number >= 1"),
{%- endif %}
]


@pytest.mark.parametrize(("flow_name", "args", "message"), BAD_PARAMETERS)
def test_prefect_run_rejects_bad_parameters_before_any_cluster(
    flow_name: str, args: list[str], message: str, cluster_closed: None
) -> None:
    path = load_flow_module(flow_name).__file__
    done = CliRunner().invoke(prefect_cli, ["run", "-p", path, *args])  # prefect's own command, in this process
    assert done.exit_code == 1, done.output
    assert message in done.output and "Flow run failed!" in done.output
    assert "dashboard=" not in done.output


# Ctrl-C: the user's command in a subprocess, interrupted once its cluster is up and the
# first cluster task has started. The inputs are large enough that the run is still
# computing when the signal lands. Only the command gets the signal: like a Coiled
# cluster's remote machines, the local worker processes must be stopped by the project's
# code, not by the terminal.
CLI = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "run"]
PREFECT_RUN = [str(Path(sys.executable).parent / "prefect"), "run", "-p"]
BIG = {
    "timeseries": ["--param", "end=2001-01-01", "--param", "freq=1s", "--param", "partition_freq=1D"],
    "inc-double-add-sum": ["--param", "n=5000"],
}
COMPUTING = {
    "timeseries": "Task 'summarize': Starting task run",
    "inc-double-add-sum": "[0]': Starting task run",  # inc's or double's first element, whichever runs first
}
# Each flow through the project's command line, and ``prefect run -p`` for the flow whose
# cluster only the exit hook can close there (the mapped flow's executor closes its own).
PREFECT_RUN_FLOW = "{{ 'timeseries' if cookiecutter.executor != 'DaskExecutor' else 'inc-double-add-sum' }}"
INTERRUPTED = {flow: ([*CLI, flow, *BIG[flow]], COMPUTING[flow]) for flow in FLOWS}
INTERRUPTED[f"prefect run -p {PREFECT_RUN_FLOW}"] = (
    [*PREFECT_RUN, load_flow_module(PREFECT_RUN_FLOW).__file__, *BIG[PREFECT_RUN_FLOW]],
    COMPUTING[PREFECT_RUN_FLOW],
)
HANG_GUARD_SECONDS = 120  # not a timing check: only keeps a hung run from hanging the suite
# Now and then an interrupt is lost before it reaches the project: one that lands while
# the dask client pickles a task (the mapped flow pickles thousands) comes out of the
# pickler as a pickling error, which distributed answers by pickling again with
# cloudpickle. Like a user, the test presses Ctrl-C again when the run has not closed
# its cluster a few seconds later.
PRESS_AGAIN_SECONDS = 5


@dataclass(frozen=True)
class Interrupted:
    """What an interrupted command did."""

    returncode: int
    output: str
    had_workers: bool  # worker processes were running when the signal was sent
    left_running: list[str]


class InterruptedRun:
    """One command, sent SIGINT the moment it logs the line ``when``."""

    def __init__(self, command: list[str], when: str) -> None:
        self.when = when
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            f"{ENV_PREFIX}CLUSTER": "local",
            f"{ENV_PREFIX}LOCAL_N_WORKERS": "1",
            f"{ENV_PREFIX}LOCAL_PROCESSES": "true",
        }
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT_ROOT
        )
        self.lines: list[str] = []
        self.descendants: list[psutil.Process] = []
        self.had_workers = False
        self.presses = 0
        # Reading on a thread drains the pipe and sends the signal without waiting for other runs.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if self.when in line and not self.descendants:
                self.descendants = psutil.Process(self.process.pid).children(recursive=True)
                self.had_workers = any("multiprocessing.spawn" in _describe(child) for child in self.descendants)
                self.press_ctrl_c()

    def press_ctrl_c(self) -> None:
        self.presses += 1
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> Interrupted:
        """Wait for the command and its descendants; kill whatever outlived it, and report it."""
        for _ in range(HANG_GUARD_SECONDS // PRESS_AGAIN_SECONDS):
            try:
                self.process.wait(timeout=PRESS_AGAIN_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if self.presses and not any(CLOSED in line for line in self.lines):
                    self.press_ctrl_c()
        else:
            self.process.kill()
            self.process.wait()
        _, alive = psutil.wait_procs(self.descendants, timeout=10)
        left_running = [_describe(child) for child in alive]
        for child in alive:
            child.kill()
        self.reader.join()
        return Interrupted(self.process.returncode, "".join(self.lines), self.had_workers, left_running)


def _describe(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return f"pid {process.pid}"


def ctrl_c_problems(label: str, run: Interrupted) -> list[str]:
    """What is wrong with how one interrupted command ended; empty when all is well."""
    if "dashboard=" not in run.output or not run.had_workers:
        return [f"{label}: not interrupted while computing:\n{run.output}"]
    problems = []
    if run.returncode in (0, -signal.SIGKILL):
        problems.append(f"{label}: exit code {run.returncode}")
    if CLOSED not in run.output:
        problems.append(f"{label}: the cluster was not closed by the project's code:\n{run.output}")
    if label in FLOWS:  # the project's own command line
        message = f"{label}: interrupted; no cluster is left running"
        if run.returncode != 130:
            problems.append(f"{label}: exit code {run.returncode}, not 130")
        if message not in run.output or (CLOSED in run.output and run.output.index(CLOSED) > run.output.index(message)):
            problems.append(f"{label}: {message!r} missing or said before it was so:\n{run.output}")
    if run.left_running:
        problems.append(f"{label}: left running after Ctrl-C: {run.left_running}")
    return problems


def test_ctrl_c_closes_the_cluster_and_exits_non_zero() -> None:
    """Every command at once, in one test: they are independent, and together they take seconds less."""
    runs = {label: InterruptedRun(*command_and_when) for label, command_and_when in INTERRUPTED.items()}
    problems = [problem for label, run in runs.items() for problem in ctrl_c_problems(label, run.finish())]
    assert not problems, "\n".join(problems)
