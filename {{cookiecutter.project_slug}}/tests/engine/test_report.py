"""A look inside a run: ``run --report`` for every flow on both kinds of local cluster, and the terminal's extras."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster

from {{ cookiecutter.package_name }}.plumbing import inside
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.executor import ClusterDaskExecutor
from {{ cookiecutter.package_name }}.plumbing.runner import run_flow
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, smoke_args

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What every report Dask writes holds: its title and the panels of its tabs.
REPORT_MARKERS = ("Dask Performance Report", "Task Stream", "Worker Profile", "Bandwidth")


def performance_report(name: str, path: Path) -> str:
    """The report of a smoke run of flow ``name``, written to ``path``."""
    outcome = run_flow(name, "local", FLOWS[name].smoke, report=path)
    assert outcome.failure is None, outcome.failure
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("processes", ["true", "false"], ids=["worker-processes", "worker-threads"])
@pytest.mark.parametrize("name", FLOWS)
def test_the_report_is_dasks_performance_report_of_the_run(
    name: str, processes: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every flow's report; a flow whose every task runs on the cluster finds each task in it
    (its key starts with the task's name). Its test file checks what its own computation shows."""
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", processes)
    html = performance_report(name, tmp_path / "report.html")
    assert all(marker in html for marker in REPORT_MARKERS)
    flow = FLOWS[name].flow
    if isinstance(flow.executor, ClusterDaskExecutor):
        assert all(f'"{task.name}-' in html for task in flow.tasks), sorted(task.name for task in flow.tasks)


@pytest.mark.parametrize("case", ["existing file", "missing folder"])
def test_a_report_path_that_cannot_be_written_whole_exits_2_before_any_cluster(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.html" if case == "existing file" else tmp_path / "nowhere" / "report.html"
    if case == "existing file":
        path.write_text("the user's own file")
    name = next(iter(FLOWS))
    assert main(["run", name, "--report", str(path)]) == 2
    captured = capsys.readouterr()
    expected = {
        "existing file": f"error: --report {path}: exists; choose a new file (a report never replaces one)",
        "missing folder": f"error: --report {path}: the folder {path.parent} does not exist",
    }[case]
    assert captured.err.splitlines() == [expected]
    assert "cluster backend=" not in captured.out
    assert case != "existing file" or path.read_text() == "the user's own file"


def at_a_terminal(*args: str) -> str:
    """Run the command line with its output on a real pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", PACKAGE, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL,
        cwd=PROJECT_ROOT, env=env,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 300  # a hang guard, not a timing check
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    finally:
        process.kill()
        os.close(leader)
    return shown.decode(errors="replace")


def test_a_terminal_is_shown_the_dashboard_link_once_before_the_work() -> None:
    name = next(iter(FLOWS))
    shown = at_a_terminal("run", name, *smoke_args(FLOWS[name]))
    links = [line for line in shown.splitlines() if line.startswith("dashboard: http")]
    assert len(links) == 1, shown
    assert shown.index(links[0]) < shown.index(f"{name}: Success")


def test_a_long_computation_shows_a_progress_bar_at_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``compute_with_progress`` on a real cluster: the bar on a real terminal, nothing in a log."""
    monkeypatch.setattr(inside, "PROGRESS_AFTER_SECONDS", 0)  # any computation counts as long
    slow = dask.delayed(time.sleep)(0.5)
    leader, follower = pty.openpty()
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
            assert inside.compute_with_progress(client, slow) is None
            assert capsys.readouterr().out == ""  # not a terminal
            with os.fdopen(follower, "w") as terminal, monkeypatch.context() as patch:
                patch.setattr(sys, "stdout", terminal)
                assert inside.compute_with_progress(client, slow) is None
    shown = os.read(leader, 65536).decode(errors="replace")
    os.close(leader)
    assert "100% Completed" in shown, shown
