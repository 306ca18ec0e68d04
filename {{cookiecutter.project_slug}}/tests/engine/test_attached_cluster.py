"""Flows on a cluster someone else runs: attached by its scheduler's address, and left running.

A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 stand in for a
team's cluster. They run this environment's Python with the project importable, as a
real cluster must (the version check at connection time would refuse another). Every
flow runs there, through ``--cluster ADDRESS`` and through ``<PREFIX>_CLUSTER``, with the
result it has on the embedded cluster; after a run, after a failed task and after a
Ctrl-C or SIGTERM, the scheduler and both workers are still up and the scheduler holds
no task. An address with nothing listening fails with one line.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from distributed import Client
from prefect import Parameter
from prefect.engine.state import Failed

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration, find_flow
from {{ cookiecutter.package_name }}.plumbing.run import failure_message
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import (
    FLOWS,
    PACKAGE,
    WAIT_SECONDS,
    free_port,
    project_env,
    run_held_and_signalled,
    smoke_args,
    smoke_result,
)

WORKERS = 2


def run_command(name: str, folder: Path) -> list[str]:
    """The flow's run through the project's command line, under held_open.py (the signal tests' moments)."""
    held_open = Path(__file__).resolve().parents[1] / "held_open.py"
    return [sys.executable, str(held_open), "-m", PACKAGE, "run", name, *smoke_args(FLOWS[name], folder)]


def fail_a_cluster_task(declaration: FlowDeclaration, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make a task that computes on the cluster (one with retries, else the last) fail once it has done
    its work; what its error says. The failing ``run`` is a closure, so it travels by value to workers."""
    flow = declaration.flow
    tasks = sorted((task for task in flow.tasks if not isinstance(task, Parameter)), key=lambda task: flow.slugs[task])
    task = next((task for task in tasks if task.max_retries), tasks[-1])
    said, original = f"RuntimeError: injected into {flow.slugs[task]}", task.run

    def run(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise RuntimeError(said.partition(": ")[2])

    monkeypatch.setattr(task, "run", run)
    return said


@dataclass(frozen=True)
class RunningCluster:
    """A scheduler and its workers, each a process this module started and stops."""

    address: str
    processes: list[subprocess.Popen]


def stop(process: subprocess.Popen) -> None:
    """End the process and all it started (a worker's nanny and its worker); SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def started_cluster(folder: Path, *preload: str) -> Iterator[RunningCluster]:
    """``dask scheduler`` and two ``dask worker`` processes on loopback, ports chosen by the OS, each with
    the preload files given; stopped when the block ends."""
    scheduler_file = folder / "scheduler.json"
    log = (folder / "cluster.log").open("wb")
    common = {"env": project_env(), "cwd": folder, "stdout": log, "stderr": log, "start_new_session": True}
    preloads = [argument for path in preload for argument in ("--preload", path)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file), *preloads],
            **common,
        )
    ]
    try:
        address = scheduler_address(scheduler_file, processes[0])
        for number in range(WORKERS):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1"]
                    + ["--nthreads", "1", "--dashboard-address", "127.0.0.1:0", "--name", f"worker-{number}"]
                    + preloads,
                    **common,
                )
            )
        with Client(address, timeout=WAIT_SECONDS, set_as_default=False) as client:
            client.wait_for_workers(WORKERS, timeout=WAIT_SECONDS)
        yield RunningCluster(address, processes)
    finally:
        for process in processes:
            stop(process)
        log.close()


@pytest.fixture(scope="module")
def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with started_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


def scheduler_address(scheduler_file: Path, scheduler: subprocess.Popen) -> str:
    """The address the scheduler writes to its file once it listens."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):  # not written yet, or not whole yet
            assert scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)


def transitions(cluster: RunningCluster) -> int:
    """Task state changes the scheduler has seen: it grows only when work reaches the cluster."""
    with Client(cluster.address, timeout=WAIT_SECONDS, set_as_default=False) as client:
        return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


def assert_up_and_idle(cluster: RunningCluster) -> None:
    """Every process still runs, both workers are connected, and the scheduler lets go of every task."""
    assert all(process.poll() is None for process in cluster.processes), "a scheduler or worker process exited"
    with Client(cluster.address, timeout=WAIT_SECONDS, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == WORKERS
        deadline = time.monotonic() + WAIT_SECONDS  # releasing is asynchronous; this bounds the wait
        while (held := client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert held == 0, f"the scheduler still holds {held} tasks"


@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_runs_on_the_cluster_given_by_address_with_the_same_result(
    name: str, running_cluster: RunningCluster, tmp_path: Path, capsys
) -> None:
    declaration = FLOWS[name]
    expected = str(smoke_result(declaration, tmp_path))
    capsys.readouterr()
    before = transitions(running_cluster)

    assert main(["run", name, "--cluster", running_cluster.address, *smoke_args(declaration, tmp_path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{name}: Success\n") and out.count(expected) == 1, out
    assert transitions(running_cluster) > before, "no work reached the attached cluster"
    assert_up_and_idle(running_cluster)


@pytest.mark.parametrize("name", FLOWS)
def test_a_failed_task_leaves_the_attached_cluster_up_and_idle(
    name: str, running_cluster: RunningCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The address comes from ``<PREFIX>_CLUSTER`` here; the failure goes into a task that computes on the cluster."""
    monkeypatch.setenv(f"{ENV_PREFIX}CLUSTER", running_cluster.address)
    declaration = find_flow(name)
    said = fail_a_cluster_task(declaration, monkeypatch)

    state = declaration.run(declaration.smoke_parameters(tmp_path))

    assert isinstance(state, Failed)
    assert said in failure_message(state, declaration.flow)
    assert_up_and_idle(running_cluster)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", FLOWS)
def test_a_signal_mid_run_disconnects_and_leaves_the_attached_cluster_up(
    name: str, signum: int, running_cluster: RunningCluster, tmp_path: Path
) -> None:
    command = [*run_command(name, tmp_path), "--cluster", running_cluster.address]
    status, output = run_held_and_signalled(command, signum, project_env(HELD_OPEN_AT="compute"))

    assert status == 128 + signum, output
    said = [line for line in output.splitlines() if "interrupted by " in line]
    assert said == [
        f"{name}: interrupted by {signal.Signals(signum).name}; disconnected; the cluster at "
        f"{running_cluster.address} runs on (this project did not start it)"
    ], output
    assert "Traceback" not in output
    assert_up_and_idle(running_cluster)


@pytest.mark.parametrize("name", FLOWS)
def test_an_address_with_nothing_listening_fails_with_one_line_before_any_work(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """In this process, where the command line's imports are done: the bound is the connect's."""
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv(f"{ENV_PREFIX}CONNECT_TIMEOUT_SECONDS", "2")
    began = time.monotonic()
    with pytest.raises(SystemExit) as exited:  # as ``python -m`` ends: exit status 1
        main(["run", name, "--cluster", address, *smoke_args(FLOWS[name], tmp_path)])
    elapsed = time.monotonic() - began
    assert exited.value.code == 1
    assert elapsed < 10, f"took {elapsed:.1f} s"  # a hang guard: distributed alone would retry for 30 s
    assert capsys.readouterr().err.splitlines() == [
        f"error: the scheduler at {address} cannot be reached (Timed out trying to connect to {address} after 2 s); "
        "check the address, that the scheduler runs and that this machine can reach it; nothing was run"
    ]


class Mute:
    """A listener on loopback that is no Dask scheduler: it accepts and never answers (``silent``),
    or it is a web server, which waits for a request line Dask never sends (``http``)."""

    def __init__(self, kind: str) -> None:
        handler = http.server.SimpleHTTPRequestHandler if kind == "http" else SilentHandler
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.address = f"tcp://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        time.sleep(WAIT_SECONDS)  # holds the connection open, says nothing


def run_attached(name: str, address: str, folder: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``run NAME --cluster ADDRESS`` with smoke parameters; its outcome and what it said beyond its INFO log."""
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "run", name, "--cluster", address, *smoke_args(FLOWS[name], folder)],
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    return done, [line for line in done.stderr.splitlines() if " INFO - " not in line]


@pytest.mark.parametrize("kind", ["silent", "http"])
@pytest.mark.parametrize("name", FLOWS)
def test_a_listener_that_is_no_scheduler_fails_in_one_line_within_the_timeout(
    name: str, kind: str, tmp_path: Path
) -> None:
    """distributed bounds only the TCP connect: its handshake waited forever on such a listener."""
    mute = Mute(kind)
    try:
        began = time.monotonic()
        done, said = run_attached(name, mute.address, tmp_path, **{f"{ENV_PREFIX}CONNECT_TIMEOUT_SECONDS": "2"})
        elapsed = time.monotonic() - began
    finally:
        mute.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert said == [
        f"error: the scheduler at {mute.address} cannot be reached (Timed out trying to connect to {mute.address} "
        "after 2 s); check the address, that the scheduler runs and that this machine can reach it; nothing was run"
    ], done.stderr
    assert elapsed < WAIT_SECONDS / 3, f"took {elapsed:.1f} s"  # a hang guard: the imports, then 2 s


@pytest.mark.parametrize("name", FLOWS)
def test_a_workers_address_given_for_the_scheduler_fails_in_one_line(name: str, tmp_path: Path) -> None:
    """A real worker answers the client's handshake with an error of its own, which was a traceback."""
    with started_cluster(tmp_path) as cluster:
        with Client(cluster.address, timeout=WAIT_SECONDS, set_as_default=False) as client:
            worker = next(iter(client.scheduler_info()["workers"]))
        done, said = run_attached(name, worker, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(said) == 1 and said[0].startswith(f"error: the server at {worker} is no Dask scheduler ("), said
    assert said[0].endswith("give the scheduler's address, not a worker's; nothing was run"), said
    assert "Traceback" not in done.stdout + done.stderr


# Parameters under which each example computes for seconds on two workers: long enough to lose its scheduler
# mid-run. The line to wait for before the kill, and how long after it.
LONG_RUNS = {
    "timeseries": (["--param", "end=2000-03-01"], "Task 'summarize': Starting task run", 1.0),
    "inc-double-add-sum": (["--param", "n=400"], "cluster backend=attached", 1.0),
}


@pytest.mark.parametrize("name", [name for name in LONG_RUNS if name in FLOWS])
def test_a_scheduler_killed_mid_run_ends_the_run_in_one_line(name: str, tmp_path: Path) -> None:
    """No retry against a closed client, no traceback: one line that the scheduler went away, exit 1."""
    parameters, trigger, after = LONG_RUNS[name]
    with started_cluster(tmp_path) as cluster:
        run = subprocess.Popen(
            [sys.executable, "-m", PACKAGE, "run", name, "--cluster", cluster.address, *parameters],
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        killed = threading.Event()

        def read() -> None:
            for line in run.stdout:
                lines.append(line)
                if trigger in line and not killed.is_set():
                    time.sleep(after)
                    os.killpg(cluster.processes[0].pid, signal.SIGKILL)
                    killed.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            run.wait(timeout=WAIT_SECONDS)
        finally:
            run.kill()
            reader.join(timeout=10)
    output = "".join(lines)
    assert killed.is_set(), output
    assert run.returncode == 1, output
    said = [line for line in output.splitlines() if " INFO - " not in line]
    assert said == [
        f"error: the scheduler at {cluster.address} went away during the run; its work is lost: run again once "
        "it is back"
    ], output
    assert "Retrying" not in output and "attempts" not in output


@pytest.fixture(scope="module")
def other_versions_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A scheduler and workers that report other versions of Python, cloudpickle and msgpack."""
    preload = str(Path(__file__).with_name("other_versions.py"))
    with started_cluster(tmp_path_factory.mktemp("other"), preload) as cluster:
        yield cluster


@pytest.mark.parametrize("name", FLOWS)
def test_a_cluster_of_other_versions_is_refused_with_one_line_per_mismatch(
    name: str, other_versions_cluster: RunningCluster, tmp_path: Path
) -> None:
    address = other_versions_cluster.address
    done, said = run_attached(name, address, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert said[0] == (
        "error: the cluster's packages do not match this environment's; rebuild the environment from the pins "
        "and run `doctor` before retrying:"
    ), done.stderr
    places = ["scheduler", *(f"worker {worker}" for worker in sorted(worker_addresses(address)))]
    expected = {f"  {package}: this machine has" for package in ("python", "cloudpickle", "msgpack")}
    assert len(said) == 1 + len(expected) * len(places), done.stderr
    assert all(any(line.startswith(start) for start in expected) for line in said[1:]), done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "VersionMismatch" not in done.stderr + done.stdout
    assert all(process.poll() is None for process in other_versions_cluster.processes), "the cluster died"


def worker_addresses(address: str) -> list[str]:
    with Client(address, timeout=WAIT_SECONDS, set_as_default=False) as client:
        return list(client.scheduler_info()["workers"])
