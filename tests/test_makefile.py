"""The generated Makefile: the everyday targets, one run target pair per generated flow, and they work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import CHOICES, bake, package_of
from expected_files import expected_flows

EVERYDAY = ["help", "env", "venv", "test", "lint", "doctor", "diagram"]


def make(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the generated Makefile as a user would, not as a sub-make of the template's `make test`."""
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PYTHONPATH"] = str(project)
    return subprocess.run(["make", *args], cwd=project, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("executor", CHOICES["executor"])
def test_targets_follow_the_generated_flows(executor: str, tmp_path: Path) -> None:
    project = bake(tmp_path, executor=executor)
    flows = expected_flows(executor)
    run_targets = [f"run-{flow}{where}" for flow in flows for where in ("", "-coiled")]
    listed = [line.split()[0] for line in make(project).stdout.splitlines()]  # `make` alone is `make help`
    assert listed == EVERYDAY[:3] + run_targets + EVERYDAY[3:]
    package = package_of(project)
    for flow in flows:
        dry = make(project, "-n", f"run-{flow}-coiled", "PYTHON=python", "PARAMS=--param a=1")
        assert dry.stdout.strip() == f"python -m {package} run {flow} --cluster coiled --param a=1"
    for absent in set(expected_flows("both")) - set(flows):
        assert make(project, "-n", f"run-{absent}").returncode != 0
    assert make(project, "-n", "doctor", "PYTHON=python").stdout.strip() == f"python -m {package} doctor"
    assert make(project, "-n", "diagram", "PYTHON=python").stdout.strip() == f"python -m {package} diagram"
    assert make(project, "-n", "venv").stdout.splitlines()[-1] == '.venv/bin/python -m pip install -e ".[dev,diagram]"'


@pytest.mark.slow
def test_run_target_runs_the_flow_locally(tmp_path: Path) -> None:
    project = bake(tmp_path, executor="DaskExecutor")
    done = make(project, "run-inc-double-add-sum", f"PYTHON={sys.executable}", "PARAMS=--param n=4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-2:] == ["inc-double-add-sum: Success", "22"]  # sum(3x + 1 for x < 4)
