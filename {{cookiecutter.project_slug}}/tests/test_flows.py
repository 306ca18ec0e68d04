"""Every flow in ``flows/`` keeps the project's promises: it runs, a failure names its task (in its last
line, its run history and its one alert), a Ctrl-C closes its cluster.

A flow is covered the moment its module exists: each test runs once per flow, with the
smoke parameters it declares, on a real ``distributed.LocalCluster``. The same promises
at every moment of a cluster's life, for every signal and on every kind of cluster, are
the plumbing's own tests (``tests/engine``, ``make test-all``).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.history import listed
from {{ cookiecutter.package_name }}.settings import DISTRIBUTION as PROJECT
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, Webhook, project_env, run_held_and_signalled, smoke_args

CLOSED = " closed transitions="  # the cluster session's line once a cluster is closed


def test_the_project_declares_flows() -> None:
    assert FLOWS, "no module in flows/ declares FLOW"


@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_runs_from_the_command_line_and_prints_its_result(
    name: str, tmp_path: Path, history: Path, webhook: Webhook, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    """Then, for a flow that keeps results, ``run --resume`` restores every one of them and prints the same."""
    caplog.set_level(logging.INFO, logger="prefect")
    args = ["run", name, *smoke_args(FLOWS[name], tmp_path)]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: Success\n") and len(out.splitlines()) > 1, out
    assert caplog.text.count("dashboard=") == caplog.text.count(CLOSED) == 1, caplog.text
    [run] = listed(history)
    assert (run["flow"], run["state"], run["exit_status"], run["backend"]) == (name, "Success", 0, "local")
    assert f"name={run['cluster']} dashboard=" in caplog.text
    assert webhook.posts == []  # alerts go out for runs that did not succeed
    if FLOWS[name].keep:
        caplog.clear()
        assert main([*args, "--resume"]) == 0, capsys.readouterr().err
        assert capsys.readouterr().out == out
        assert all(f"task {task.name!r}: restored, not computed" in caplog.text for task in FLOWS[name].keep)


@pytest.mark.parametrize("name", FLOWS)
def test_a_failing_task_fails_the_run_naming_itself_and_closes_the_cluster(
    name: str,
    tmp_path: Path,
    history: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="prefect")
    result = FLOWS[name].result

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected: a bug")

    monkeypatch.setattr(result, "run", broken)
    assert main(["run", name, *smoke_args(FLOWS[name], tmp_path)]) == 1
    failure = f"task {result.name!r} failed: RuntimeError: injected: a bug"
    assert capsys.readouterr().err.splitlines()[-1] == f"{name}: Failed: {failure}"
    assert caplog.text.count("dashboard=") == caplog.text.count(CLOSED) == 1, caplog.text
    [run] = listed(history)
    assert (run["state"], run["failed_task"], run["error"], run["exit_status"]) == ("Failed", result.name, failure, 1)
    [alert] = webhook.texts
    assert alert.splitlines()[:2] == [f"{PROJECT}: flow {name} ended Failed (exit status 1)", failure], alert


@pytest.mark.parametrize("name", FLOWS)
def test_a_ctrl_c_while_it_computes_closes_its_cluster_and_says_so(name: str, tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT to the process group, as a terminal sends it) to a run with worker processes."""
    held_open = str(Path(__file__).with_name("held_open.py"))
    command = [sys.executable, held_open, "-m", PACKAGE, "run", name, *smoke_args(FLOWS[name], tmp_path)]
    env = project_env(
        HELD_OPEN_AT="compute", **{f"{ENV_PREFIX}LOCAL_PROCESSES": "true", f"{ENV_PREFIX}LOCAL_N_WORKERS": "1"}
    )
    status, output = run_held_and_signalled(command, signal.SIGINT, env)
    assert status == 130, output
    assert output.count(CLOSED) == 1 and "Traceback" not in output, output
    assert output.splitlines()[-1] == f"{name}: interrupted by SIGINT; no cluster is left running", output
