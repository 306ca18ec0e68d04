"""The generated project's own tests pass right after baking, for each executor.

The default bake's suite runs in tests/test_environments.py, inside a fresh venv per
Python and the way a user runs it (one test process per core). Here the other
executors' suites run in one process each (``-n 0``), since this suite already keeps
every core busy; that also proves the generated tests need no particular order or
parallelism.
"""

from __future__ import annotations

import pytest
from bakery import bake, run_generated_tests


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    [{"executor": "LocalExecutor"}, {"executor": "DaskExecutor", "default_cluster": "coiled"}],
    ids=["LocalExecutor", "DaskExecutor-coiled-default"],
)
def test_generated_suite_passes(answers: dict, tmp_path) -> None:
    project = bake(tmp_path, **answers)
    done = run_generated_tests(project, "-n", "0")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
