"""A signal at any moment of a cluster's life ends the run with the cluster closed by the project.

Every flow, through the project's command line and through ``prefect run -p``, is sent
SIGINT, SIGTERM and SIGHUP while its cluster starts, while it computes and while it
closes (``held_open.py`` holds each moment until the signal is there); a Ctrl-C before
any cluster exists must say so. Each run has a
real LocalCluster with a worker process. SIGINT and SIGHUP go to the whole process group,
as a terminal's Ctrl-C and a closed terminal send them, so the worker processes get
them too; SIGTERM goes to the command alone, as ``kill`` and ``timeout`` send it. Each
run must exit with 128 + the signal, having logged its cluster's close, printed one
``interrupted by`` line, no traceback and no ``FATAL``, and left no process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from {{ cookiecutter.package_name }}.plumbing import signals
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, HELD, PACKAGE, PROJECT_ROOT, WAIT_SECONDS, project_env, run_held_and_signalled, smoke_args

CLOSED = " closed transitions="  # the session's log line once a cluster is closed
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TO_GROUP = (signal.SIGINT, signal.SIGHUP)  # what a terminal sends to every process of the job
MOMENTS = ("start", "compute", "close")
DROPPED = ("weakref", "del")  # held_open.py: where Python drops the exception a signal raises
BEFORE_ANY_CLUSTER = ("before", *DROPPED)
HANDLERS_WITHIN_SECONDS = 0.5  # on an idle machine, from the launch
AT_ONCE = 3 * (os.cpu_count() or 1)  # runs in flight: each waits on its cluster part of the time


def commands(name: str, folder: Path) -> dict[str, list[str]]:
    """The flow through the project's command line and through ``prefect run -p`` (which plans the run
    from the environment), under held_open; each with smoke parameters made in a folder of its own."""
    held = [sys.executable, str(PROJECT_ROOT / "tests" / "held_open.py")]
    declaration = FLOWS[name]
    for command in ("run", "prefect-run"):
        (folder / command).mkdir(parents=True)
    return {
        "run": [*held, "-m", PACKAGE, "run", name, *smoke_args(declaration, folder / "run")],
        "prefect run -p": [
            *held, "prefect", "run", "-p", declaration.source, *smoke_args(declaration, folder / "prefect-run")
        ],
    }  # fmt: skip


class SignalledRun:
    """One command, sent ``signum`` at each line held_open prints at ``moment``."""

    def __init__(self, command: list[str], moment: str, signum: int) -> None:
        self.label = f"{signal.Signals(signum).name} during {moment}"
        self.signum = signum
        self.started = moment not in BEFORE_ANY_CLUSTER
        env = {
            **os.environ,
            "HELD_OPEN_AT": moment,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            f"{ENV_PREFIX}CLUSTER": "local",
            f"{ENV_PREFIX}LOCAL_N_WORKERS": "1",
            f"{ENV_PREFIX}LOCAL_PROCESSES": "true",
        }
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,  # its own process group, as a terminal gives a job
        )
        self.lines: list[str] = []
        self.descendants: list[psutil.Process] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(HELD):
                self.descendants = self.descendants or psutil.Process(self.process.pid).children(recursive=True)
                if self.signum in TO_GROUP:
                    os.killpg(self.process.pid, self.signum)
                else:
                    self.process.send_signal(self.signum)

    def problems(self) -> list[str]:
        """What went wrong, once the command has ended; what it left running is killed."""
        try:
            self.process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _, alive = psutil.wait_procs(self.descendants, timeout=10)
        for child in alive:
            child.kill()
        self.reader.join(timeout=10)
        output = "".join(self.lines)
        if HELD not in output:
            return [f"{self.label}: the held moment was never reached:\n{output}"]
        found = []
        if self.process.returncode != 128 + self.signum:
            found.append(f"{self.label}: exit status {self.process.returncode}, not {128 + self.signum}")
        if self.started and CLOSED not in output:
            found.append(f"{self.label}: the cluster was not closed by the project's code")
        if not self.started and CLOSED in output:
            found.append(f"{self.label}: a cluster started after the signal")
        lines = [line for line in output.splitlines() if "interrupted by " in line]
        outcome = "no cluster is left running" if self.started else "nothing had started"
        said = f"interrupted by {signal.Signals(self.signum).name}; {outcome}"
        if len(lines) != 1 or said not in lines[0] or output.find(CLOSED) > output.index(said):
            found.append(f"{self.label}: not one {said!r} line after the close: {lines}")
        for word in ("Traceback", "FATAL"):
            if word in output:
                found.append(f"{self.label}: {word} reached the user")
        if alive:
            found.append(f"{self.label}: left running: {[_describe(child) for child in alive]}")
        return [f"{problem}\n{output}" for problem in found]


def _describe(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return f"pid {process.pid}"


def signalled(command: list[str], moment: str, signum: int) -> list[str]:
    return SignalledRun(command, moment, signum).problems()


@pytest.mark.parametrize("name", FLOWS)
def test_every_signal_at_every_moment_closes_the_cluster(name: str, tmp_path: Path) -> None:
    """The flow's eighteen runs, several at a time: they are independent, and mostly wait."""
    cells = [
        (how, command, moment, signum)
        for moment in MOMENTS
        for signum in SIGNALS
        for how, command in commands(name, tmp_path / f"{moment}-{signum}").items()
    ]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        found = pool.map(lambda cell: [f"{cell[0]}: {problem}" for problem in signalled(*cell[1:])], cells)
        problems = [problem for cell_problems in found for problem in cell_problems]
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", FLOWS)
def test_a_signal_python_drops_still_ends_the_run_before_any_cluster(name: str, tmp_path: Path) -> None:
    """Raised in a weakref callback or a ``__del__`` (as at the end of every import), a signal's exception
    is dropped by Python; the run must still end, before any cluster, with its one line."""
    cells = [
        (how, command, moment, signum)
        for moment in DROPPED
        for signum in SIGNALS
        for how, command in commands(name, tmp_path / f"{moment}-{signum}").items()
    ]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        found = pool.map(lambda cell: [f"{cell[0]}: {problem}" for problem in signalled(*cell[1:])], cells)
        problems = [problem for cell_problems in found for problem in cell_problems]
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", FLOWS)
def test_a_ctrl_c_before_the_cluster_starts_says_so_in_one_line(name: str, tmp_path: Path) -> None:
    runs = {how: SignalledRun(command, "before", signal.SIGINT) for how, command in commands(name, tmp_path).items()}
    problems = [f"{how}: {problem}" for how, run in runs.items() for problem in run.problems()]
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_a_handler_set_before_the_project_runs_first_and_an_ignored_signal_stays_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signals, "received", [])  # this test process must not exit as if signalled
    calls: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGHUP, lambda signum, frame: calls.append(signum))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signals.install()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        with pytest.raises(signals.Interrupted) as interrupted:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)  # the handler raises long before
        assert calls == [signal.SIGHUP] and interrupted.value.exit_status == 129
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def catches(pid: int, signum: int) -> bool | None:
    """Whether the process has a handler for ``signum`` now, from the kernel's own record (Linux's
    /proc; None elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
    return bool(int(mask, 16) >> (signum - 1) & 1)


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5])
def test_a_sigterm_once_the_handlers_exist_is_never_a_silent_kill(delay: float, tmp_path: Path) -> None:
    """The handlers are set before Prefect and Dask load: a SIGTERM during the imports, the planning or
    the run ends it with 143 and one line, never the -15 of a process killed without a word. ``delay``
    counts from the moment the kernel shows the handler (on a busy machine the interpreter alone can
    take more than half a second to get there); where that cannot be seen, from half a second on."""
    name = next(iter(FLOWS))
    command = [sys.executable, "-m", PACKAGE, "run", name, *smoke_args(FLOWS[name], tmp_path)]
    env = {**project_env(), f"{ENV_PREFIX}CLUSTER": "local"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while (seen := catches(process.pid, signal.SIGTERM)) is False and process.poll() is None:
            assert time.monotonic() < deadline, "no SIGTERM handler was set"
            time.sleep(0.005)
        time.sleep(delay if seen is not None else delay + HANDLERS_WITHIN_SECONDS)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=WAIT_SECONDS)
    finally:
        process.kill()  # a no-op once it has ended
    lines = [line for line in output.splitlines() if "interrupted by " in line]
    if process.returncode == 0:
        pytest.skip(f"the run finished within {delay} s of the handlers, before the signal")
    assert process.returncode == 143, output
    assert len(lines) == 1 and "interrupted by SIGTERM; " in lines[0], output
    assert "Traceback" not in output and "Exception ignored" not in output, output


@pytest.mark.parametrize("signum", SIGNALS, ids=[signal.Signals(signum).name for signum in SIGNALS])
def test_a_signal_once_the_run_has_ended_leaves_its_last_lines_and_exit_status(signum: int, tmp_path: Path) -> None:
    """Sent the moment the run's final state is printed: Python sets the handlers back to the default
    while it exits (a quarter of a second with Prefect and Dask loaded), which made it a silent -15."""
    name = next(iter(FLOWS))
    command = [sys.executable, "-m", PACKAGE, "run", name, *smoke_args(FLOWS[name], tmp_path)]
    env = {**project_env(), f"{ENV_PREFIX}CLUSTER": "local"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    watchdog = threading.Timer(WAIT_SECONDS, process.kill)
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(f"{name}: Success"):
                process.send_signal(signum)
                break
        output = "".join(lines) + process.stdout.read()
        process.wait()
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0, output
    assert f"{name}: Success" in output and "interrupted by" not in output and "Traceback" not in output, output


@pytest.mark.parametrize("signum", SIGNALS, ids=[signal.Signals(signum).name for signum in SIGNALS])
def test_a_signal_with_hundreds_of_task_runs_in_flight_ends_the_run_at_once_in_one_line(
    signum: int, tmp_path: Path
) -> None:
    """The default layout (two worker processes) with 200 of 1,202 task runs submitted: the run stops
    starting task runs, closes its cluster without the scheduler's or the workers' noise, and says so."""
    if "inc-double-add-sum" not in FLOWS:
        pytest.skip("the inc-double-add-sum example was not generated")
    held = [sys.executable, str(PROJECT_ROOT / "tests" / "held_open.py")]
    command = [*held, "-m", PACKAGE, "run", "inc-double-add-sum", "--param", "n=400"]
    env = {
        **project_env(HELD_OPEN_AT="mapped"),
        f"{ENV_PREFIX}CLUSTER": "local",
        f"{ENV_PREFIX}LOCAL_PROCESSES": "true",
        f"{ENV_PREFIX}LOCAL_N_WORKERS": "2",
    }
    began = time.monotonic()
    status, output = run_held_and_signalled(command, signum, env)
    elapsed = time.monotonic() - began
    after = output[output.index(HELD) :].splitlines()[1:]
    said = [line for line in after if " INFO - " not in line]
    name = signal.Signals(signum).name
    assert status == 128 + signum, output
    assert said == [f"inc-double-add-sum: interrupted by {name}; no cluster is left running"], output
    for noise in ("Traceback", "CRITICAL", "lose already computed", "never retrieved", "Exception ignored"):
        assert noise not in output, noise
    started = sum("Starting task run" in line for line in after)
    assert started <= 2 * 4, f"{started} task runs started after the signal"  # what two workers had begun, and slack
    assert elapsed < WAIT_SECONDS / 3, f"took {elapsed:.1f} s"
