"""Bake the template in tests: real cookiecutter runs into temporary folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
CHOICES = {key: value for key, value in CONTEXT.items() if isinstance(value, list)}
DEFAULTS = {key: value[0] if isinstance(value, list) else value for key, value in CONTEXT.items()}


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project with ``answers`` on top of the defaults; returns its folder."""
    return Path(cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context=answers, output_dir=str(output_dir)))


def package_of(project: Path) -> str:
    return next(p.name for p in project.iterdir() if (p / "__main__.py").exists())


def run_in_project(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` in a baked project's folder, importing the project from there, with
    this environment's pinned packages."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    env.pop("PYTEST_XDIST_WORKER", None)  # a pytest started here is not one of this run's workers
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


# A generated project's plumbing tests (tests/engine: the signal matrix, attached
# schedulers, gateways, settings) are marked ``engine`` and left out of its plain
# ``pytest``. The template runs them once per test run, in one bake that holds every
# kind of flow (test_generated_suites.py); every other bake runs the user's suite.
WITH_ENGINE = ("-m", "engine or not engine")


def run_generated_tests(project: Path, *pytest_args: str) -> subprocess.CompletedProcess:
    """Run a baked project's own test suite with this environment's pinned packages.

    With no ``pytest_args`` it runs as a user's ``pytest`` does (the project's addopts:
    one test process per core); ``"-n", "0"`` runs it in one process.
    """
    try:
        return run_in_project(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args, timeout=1500)
    except subprocess.TimeoutExpired as hung:  # the generated pyproject's faulthandler_timeout printed the stacks
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part
            for part in (hung.stdout, hung.stderr)
            if part
        )
        raise AssertionError(f"the generated suite ran for over {hung.timeout} s:\n{output[-12000:]}") from None
