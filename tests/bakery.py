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


# The generated tests that start real engines for every flow are most of a generated
# suite's time: the signal matrix (every signal at every moment of a cluster's life,
# through both commands), a running scheduler with two workers, a dask-gateway server.
# Each runs in full for both kinds of flow at least once (the default bake under the
# Python running these tests, test_environments.py; the LocalExecutor bake and the bake
# without examples, test_generated_suites.py) and for every flow a user adds; other
# suites leave them out with ``deselect``.
SIGNAL_MATRIX = "every_signal_at_every_moment"
ENGINES = ("test_attached_cluster", "test_gateway")


def deselect(*tests: str, keep_for: str | None = None) -> tuple[str, str]:
    """pytest arguments that leave out ``tests`` (names or modules), except for the flow ``keep_for``."""
    expression = f"not ({' or '.join(tests)})"
    return ("-k", f"{expression} or {keep_for}" if keep_for else expression)


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
