"""The generated Makefile: the everyday targets, one ``run`` target for every flow, and they work."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import CHOICES, bake, package_of

EVERYDAY = ["help", "env", "venv", "flows", "run", "test", "test-all", "lint", "doctor", "diagram"]
MAKE = shutil.which("make")
CONDA_TOOLS = ["conda", "mamba", "micromamba"]


def make(project: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    """Run the generated Makefile as a user would, not as a sub-make of the template's `make test`."""
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PYTHONPATH"] = str(project)
    return subprocess.run(
        [MAKE, *args], cwd=project, capture_output=True, text=True, timeout=300, env={**env, **extra_env}
    )


@pytest.mark.parametrize("executor", CHOICES["executor"])
def test_targets_are_the_same_for_every_bake(executor: str, tmp_path: Path) -> None:
    project = bake(tmp_path, executor=executor)
    listed = [line.split()[0] for line in make(project).stdout.splitlines()]  # `make` alone is `make help`
    assert listed == EVERYDAY
    package = package_of(project)
    dry = make(project, "-n", "run", "FLOW=any-name", "CLUSTER=coiled", "PYTHON=python", "PARAMS=--param a=1")
    assert dry.stdout.strip() == f'python -m {package} run "any-name" --cluster "coiled" --param a=1'
    dry = make(project, "-n", "run", "FLOW=any-name", "PYTHON=python")
    assert dry.stdout.strip() == f'python -m {package} run "any-name"', "no CLUSTER: the project's own choice"
    assert make(project, "-n", "doctor", "PYTHON=python").stdout.strip() == f"python -m {package} doctor"
    assert make(project, "-n", "diagram", "PYTHON=python").stdout.strip() == f"python -m {package} diagram"
    assert make(project, "-n", "venv").stdout.splitlines()[-1] == '.venv/bin/python -m pip install -e ".[dev,diagram]"'
    with_s3 = make(project, "-n", "venv", "EXTRAS=dev,diagram,s3").stdout.splitlines()[-1]
    assert with_s3 == '.venv/bin/python -m pip install -e ".[dev,diagram,s3]"'


def test_run_without_a_flow_lists_the_flows_and_fails(tmp_path: Path) -> None:
    project = bake(tmp_path)
    done = make(project, "run", f"PYTHON={sys.executable}")
    assert done.returncode != 0
    assert "make run: say which flow, e.g. make run FLOW=<name>; the flows are:" in done.stderr
    assert "inc-double-add-sum" in done.stderr and "timeseries" in done.stderr


@pytest.mark.slow
def test_run_target_runs_the_flow_locally(tmp_path: Path) -> None:
    project = bake(tmp_path, executor="DaskExecutor")
    done = make(
        project, "run", "FLOW=inc-double-add-sum", "CLUSTER=local", f"PYTHON={sys.executable}", "PARAMS=--param n=4"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-2:] == ["inc-double-add-sum: Success", "22"]  # sum(3x + 1 for x < 4)


def offline_env(scratch: Path) -> dict[str, str]:
    """Any download fails at once (every proxy variable points at the discard port, where
    nothing listens), and pre-commit's cache is a folder that must stay absent."""
    closed = "http://127.0.0.1:9"
    proxies = {name: closed for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}  # fmt: skip
    return {**proxies, "no_proxy": "", "NO_PROXY": "", "PRE_COMMIT_HOME": str(scratch / "pre-commit-home")}


def test_lint_runs_ruff_offline_in_a_project_that_is_no_git_repository(tmp_path: Path) -> None:
    """A new project is linted before any `git init` and without GitHub, with the environment's own ruff."""
    project = bake(tmp_path / "bake")
    done = make(project, "lint", f"PYTHON={sys.executable}", **offline_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith(sys.executable)]
    assert commands == [f"{sys.executable} -m ruff check .", f"{sys.executable} -m ruff format --check ."]
    assert not (project / ".git").exists() and not (tmp_path / "pre-commit-home").exists()


@pytest.mark.parametrize(
    ("source", "reported"),
    [("import os\n", "F401"), ("x=1\n", "1 file would be reformatted")],
    ids=["lint-error", "format-error"],
)
def test_lint_fails_on_a_lint_or_format_error(source: str, reported: str, tmp_path: Path) -> None:
    project = bake(tmp_path / "bake")
    (project / package_of(project) / "flows" / "careless.py").write_text(source, encoding="utf-8")
    done = make(project, "lint", f"PYTHON={sys.executable}", **offline_env(tmp_path))
    assert done.returncode != 0
    assert reported in done.stdout and "careless.py" in done.stdout, done.stdout + done.stderr


def test_env_without_conda_mamba_or_micromamba_says_in_one_line_what_to_install(tmp_path: Path) -> None:
    """PATH is an empty folder, so none of the three is there: one line on stderr, a failure, nothing run."""
    project = bake(tmp_path / "bake")
    empty = tmp_path / "bin"
    empty.mkdir()
    done = make(project, "env", PATH=str(empty))
    assert done.returncode != 0 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.endswith(
        "make env needs conda, mamba or micromamba on PATH: install Miniforge (https://conda-forge.org/download/) "
        "or micromamba, or use make venv.  Stop."
    )


def tools_on_path(folder: Path, *names: str) -> str:
    """A PATH holding empty executable files with these names: enough for `command -v`, never run."""
    folder.mkdir()
    for name in names:
        (folder / name).write_text("#!/bin/sh\nexit 1\n")
        (folder / name).chmod(0o755)
    return str(folder)


@pytest.mark.parametrize("present", [CONDA_TOOLS, CONDA_TOOLS[1:], CONDA_TOOLS[2:]], ids=lambda names: "+".join(names))
def test_env_uses_the_first_of_conda_mamba_and_micromamba_on_path(present: list[str], tmp_path: Path) -> None:
    """Which command `make env` picks. The tools are placeholder scripts that only have to be found on PATH:
    `make -n` prints the recipe without running it, so none of them ever runs."""
    project = bake(tmp_path / "bake")
    path = tools_on_path(tmp_path / "bin", *present)
    chosen = present[0]
    done = make(project, "-n", "env", PATH=path, CONDA="/usr/share/miniconda")  # GitHub's runners export CONDA
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"if {chosen} env list | awk")
    assert f"{chosen} env create --file environment.yml" in done.stdout
    assert set(re.findall(r"\b(\w+) env ", done.stdout)) == {chosen}
    asked = make(project, "-n", "env", "CONDA=micromamba", PATH=path)
    assert asked.stdout.startswith("if micromamba env list | awk")
