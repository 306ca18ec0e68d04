"""A local run over this machine's limits is refused at once, naming its size and the ways on.

Every flow gets the checks the plumbing makes itself (worker layout, retry waits); the
flows' own sizes (rows, task runs) are tested in their own test files.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import dask
import pytest
from prefect import Task

from {{ cookiecutter.package_name }}.plumbing.cli import EXIT_USAGE, main
from {{ cookiecutter.package_name }}.plumbing.clusters import cluster_spec
from {{ cookiecutter.package_name }}.plumbing.estimate import (
    WORKERS_PER_CORE,
    Estimate,
    Machine,
    TooBig,
    check,
)
from {{ cookiecutter.package_name }}.plumbing.runner import preflight
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, smoke_args

REFUSED_WITHIN_SECONDS = 2


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command line; it must exit 2 within the bound, and this returns its one error line."""
    began = time.monotonic()
    status = main(args)
    elapsed = time.monotonic() - began
    err = capsys.readouterr().err
    assert status == EXIT_USAGE, err
    assert elapsed < REFUSED_WITHIN_SECONDS, f"refused after {elapsed:.1f} s"
    assert err.count("\n") == 1 and "--cluster coiled" in err and "--force" in err, err
    assert "dashboard=" not in capsys.readouterr().out
    return err


def retried_task(name: str) -> Task:
    return next(task for task in FLOWS[name].flow.tasks if task.max_retries)


RETRYING = [name for name in FLOWS if any(task.max_retries for task in FLOWS[name].flow.tasks)]


@pytest.mark.parametrize("name", FLOWS)
def test_more_worker_processes_than_the_cores_take_are_refused(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workers = WORKERS_PER_CORE * Machine.here().cores + 1
    if workers > 64:
        pytest.skip("this machine takes every worker count the settings allow")
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", "true")
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", str(workers))
    err = refused(["run", name, *smoke_args(FLOWS[name])], capsys)
    assert f"{name}: {workers:,} worker processes (limit here " in err


@pytest.mark.parametrize("name", RETRYING)
def test_retry_waits_beyond_the_budget_are_refused_and_force_runs_anyway(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = retried_task(name)
    monkeypatch.setattr(task, "retry_delay", timedelta(seconds=Machine.here().seconds))
    err = refused(["run", name, *smoke_args(FLOWS[name])], capsys)
    assert f"{name}: {task.max_retries * Machine.here().seconds:,.0f} seconds of retry waits per task" in err
    assert main(["run", name, "--force", *smoke_args(FLOWS[name])]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: Success\n")


@pytest.mark.parametrize("backend", ["coiled", "tcp://127.0.0.1:8786"], ids=["coiled", "attached"])
@pytest.mark.parametrize("name", RETRYING)
def test_a_remote_backend_only_logs_the_estimate(
    name: str, backend: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Built for real Coiled (its real keyword arguments) or a running cluster's address, not started or
    connected: the check is all that runs."""
    monkeypatch.setattr(retried_task(name), "retry_delay", timedelta(days=1))
    caplog.set_level("INFO", logger="prefect")
    with dask.config.set({"coiled.token": "a-token"}):  # a spec is only built with a token
        spec = cluster_spec(backend, name)
    preflight(FLOWS[name], FLOWS[name].smoke, spec, force=False)
    assert f"{name} estimate: " in caplog.text and "seconds of retry waits per task" in caplog.text


def test_the_first_size_over_its_limit_is_the_one_named() -> None:
    sizes = [Estimate("rows", 5, 10, "fewer rows"), Estimate("cats", 30, 20, "fewer cats"), Estimate("x", 9, 1, "-")]
    logger = logging.getLogger("test")
    check(sizes[:1], local=True, force=False, logger=logger, flow_name="f")  # within: nothing raised
    check(sizes, local=True, force=True, logger=logger, flow_name="f")
    check(sizes, local=False, force=False, logger=logger, flow_name="f")
    with pytest.raises(TooBig, match=r"^f: 30 cats \(limit here 20\) is more than .*; fewer cats, run it on Coiled"):
        check(sizes, local=True, force=False, logger=logger, flow_name="f")
