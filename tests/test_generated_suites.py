"""The generated project's own tests pass right after baking: default and each executor."""

from __future__ import annotations

import pytest
from bakery import bake, run_generated_tests


@pytest.mark.slow
@pytest.mark.xdist_group("generated")
@pytest.mark.parametrize(
    "answers",
    [{}, {"executor": "LocalExecutor"}, {"executor": "DaskExecutor", "default_cluster": "coiled"}],
    ids=["default", "LocalExecutor", "DaskExecutor-coiled-default"],
)
def test_generated_suite_passes(answers: dict, tmp_path) -> None:
    project = bake(tmp_path, **answers)
    done = run_generated_tests(project)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
