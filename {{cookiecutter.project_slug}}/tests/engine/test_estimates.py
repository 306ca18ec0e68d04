"""A local run over this machine's limits is refused at once, naming its size and the ways on.

Every flow gets the checks the plumbing makes itself (worker layout, retry waits); the
flows' own sizes (rows, task runs) are tested in their own test files.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import dask
import pytest
from click.testing import CliRunner
from prefect import Task
from prefect.cli import cli as prefect_cli

from {{ cookiecutter.package_name }}.plumbing import backends
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.plan import (
    WORKERS_PER_CORE,
    Estimate,
    Machine,
    TooBig,
    checked_estimates,
    plan_run,
)
from {{ cookiecutter.package_name }}.plumbing.run import EXIT_USAGE
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, smoke_args

REFUSED_WITHIN_SECONDS = 2


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command line; it must exit 2 within the bound, and this returns its one error line."""
    started: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backends.ClusterSpec, "start", lambda spec: started.append(spec.name))
        began = time.monotonic()
        status = main(args)
        elapsed = time.monotonic() - began
    err = capsys.readouterr().err
    assert status == EXIT_USAGE, err
    assert elapsed < REFUSED_WITHIN_SECONDS, f"refused after {elapsed:.1f} s"
    assert err.count("\n") == 1 and "--cluster coiled" in err and "--force" in err, err
    assert started == [], "a cluster was started for a run refused"
    return err


def retried_task(name: str) -> Task:
    return next(task for task in FLOWS[name].flow.tasks if task.max_retries)


RETRYING = [name for name in FLOWS if any(task.max_retries for task in FLOWS[name].flow.tasks)]


@pytest.mark.parametrize("name", FLOWS)
def test_more_worker_processes_than_the_cores_take_are_refused(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workers = WORKERS_PER_CORE * Machine.here().cores + 1
    if workers > 64:
        pytest.skip("this machine takes every worker count the settings allow")
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", "true")
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", str(workers))
    err = refused(["run", name, *smoke_args(FLOWS[name], tmp_path)], capsys)
    assert f"{name}: {workers:,} worker processes (limit here " in err


@pytest.mark.parametrize("name", RETRYING)
def test_retry_waits_beyond_the_budget_are_refused_and_force_runs_anyway(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    task = retried_task(name)
    monkeypatch.setattr(task, "retry_delay", timedelta(seconds=Machine.here().seconds))
    err = refused(["run", name, *smoke_args(FLOWS[name], tmp_path)], capsys)
    assert f"{name}: {task.max_retries * Machine.here().seconds:,.0f} seconds of retry waits per task" in err
    assert main(["run", name, "--force", *smoke_args(FLOWS[name], tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: Success\n")


@pytest.mark.parametrize("name", RETRYING)
def test_prefect_run_refuses_a_run_over_the_limits_in_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``prefect run -p`` plans from the environment, with the same refusal (and no --force to give).
    It executes the flow's file anew, so the retry delay comes from the environment."""
    monkeypatch.setenv(f"{ENV_PREFIX}RETRY_DELAY_SECONDS", str(Machine.here().seconds))
    started: list[str] = []
    monkeypatch.setattr(backends.ClusterSpec, "start", lambda spec: started.append(spec.name))
    done = CliRunner().invoke(prefect_cli, ["run", "-p", FLOWS[name].source, *smoke_args(FLOWS[name], tmp_path)])
    assert done.exit_code == EXIT_USAGE, done.output
    errors = [line for line in done.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "seconds of retry waits per task" in errors[0], done.output
    assert "Traceback" not in done.output and started == []


@pytest.mark.parametrize("backend", ["coiled", "tcp://127.0.0.1:8786"], ids=["coiled", "attached"])
@pytest.mark.parametrize("name", RETRYING)
def test_a_remote_backend_only_logs_the_estimate(
    name: str, backend: str, monkeypatch: pytest.MonkeyPatch, caplog, tmp_path: Path
) -> None:
    """Planned for real Coiled (its real keyword arguments) or a running cluster's address, never started or
    connected: the plan is all that is made."""
    monkeypatch.setattr(retried_task(name), "retry_delay", timedelta(days=1))
    caplog.set_level("INFO", logger="prefect")
    declaration = FLOWS[name]
    with dask.config.set({"coiled.token": "a-token"}):  # Coiled is only planned for with a token
        plan = plan_run(declaration, declaration.smoke_parameters(tmp_path), cluster=backend)
    over = [estimate for estimate in plan.estimates if estimate.over]
    assert [estimate.what for estimate in over] == ["seconds of retry waits per task"] and not plan.force
    assert f"{name} estimate: " in caplog.text and "seconds of retry waits per task" in caplog.text


def test_the_first_size_over_its_limit_is_the_one_named() -> None:
    sizes = [Estimate("rows", 5, 10, "fewer rows"), Estimate("cats", 30, 20, "fewer cats"), Estimate("x", 9, 1, "-")]
    logger = logging.getLogger("test")
    checked_estimates(sizes[:1], local=True, force=False, logger=logger, flow_name="f")  # within: nothing raised
    assert checked_estimates(sizes, local=True, force=True, logger=logger, flow_name="f") == tuple(sizes)
    checked_estimates(sizes, local=False, force=False, logger=logger, flow_name="f")
    with pytest.raises(TooBig, match=r"^f: 30 cats \(limit here 20\) is more than .*; fewer cats, run it on Coiled"):
        checked_estimates(sizes, local=True, force=False, logger=logger, flow_name="f")
