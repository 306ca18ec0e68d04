"""A fresh virtual environment per supported Python, built once per test run from a baked project.

The default Python's environment is built the way the generated README says (a new
venv, then ``pip install -e ".[dev,diagram]"`` from the project's pins); the other
Pythons' pin sets are installed the same way by uv, ten times faster (pip's own
``pip check`` still judges each). Environments live under the run's temp folder that
every xdist worker shares, behind a file lock: the first test that needs a Python builds
its environment, tests on the other workers wait for it and reuse it, and Pythons build
side by side. (``xdist_group`` cannot do this here: with pytest 9 it no longer keeps a
group on one worker.) The installers' caches under build/ serve every run, so wheels
they have to build, such as pendulum 2 on Python 3.10+, are built once per machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from bakery import CHOICES, TEMPLATE_ROOT, bake, package_of
from pythons import find_python

PIP_CACHE = TEMPLATE_ROOT / "build" / "pip-cache"
UV_CACHE = TEMPLATE_ROOT / "build" / "uv-cache"
UV = Path(sys.executable).with_name("uv")  # from requirements-dev.txt
DEFAULT_PYTHON = CHOICES["python_version"][0]


@dataclass(frozen=True)
class PythonEnv:
    """A project baked for ``version`` and installed editable into its own venv."""

    version: str
    project: Path
    python: Path

    @property
    def package(self) -> str:
        return package_of(self.project)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus what would leak the template's venv or pytest into a child."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    caches = {"PIP_CACHE_DIR": str(PIP_CACHE), "UV_CACHE_DIR": str(UV_CACHE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return {**env, **caches, **extra}


def run(args: list, cwd: Path, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )


def output(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"


def environment_for(version: str, tmp_path_factory: pytest.TempPathFactory) -> PythonEnv:
    """The run's environment for ``version``: built by the first caller, reused by every other."""
    interpreter = find_python(version)
    if interpreter is None:
        pytest.skip(f"no Python {version} on PATH or in ~/.pyenv/versions: its pin set is not checked on this machine")
    root = _shared_root(tmp_path_factory) / f"python{version}"
    record = root / "outcome.json"
    with _locked(root.parent / f"python{version}.lock"):
        if not record.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            record.write_text(json.dumps(_build(version, interpreter, root)))
    outcome = json.loads(record.read_text())
    if "error" in outcome:
        pytest.fail(f"building the Python {version} environment failed: {outcome['error']}")
    return PythonEnv(version, Path(outcome["project"]), Path(outcome["python"]))


def _build(version: str, interpreter: str, root: Path) -> dict[str, str]:
    project = bake(root, python_version=version)
    venv = root / "venv"
    python = venv / "bin" / "python"
    if version == DEFAULT_PYTHON:  # the README's commands
        # --no-compile: the suite byte-compiles what it imports; compiling every installed file costs ~10 s
        steps = [
            [interpreter, "-m", "venv", venv],
            [python, "-m", "pip", "install", "--quiet", "--no-compile", "-e", ".[dev,diagram]"],
        ]
    else:  # --seed: pip too, for `pip check`
        steps = [
            [UV, "venv", "--quiet", "--seed", "--python", interpreter, venv],
            [UV, "pip", "install", "--quiet", "--python", python, "-e", ".[dev,diagram]"],
        ]
    for step in steps:
        done = run(step, cwd=project)
        if done.returncode:
            return {"error": output(done)}
    return {"project": str(project), "python": str(python)}


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's temp folder: under xdist each worker's basetemp is a child of it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
