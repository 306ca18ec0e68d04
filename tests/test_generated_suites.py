"""The generated project's own tests pass right after baking, and after a user adds or removes flows.

A user's next step is replacing the examples with their own flows, so each bake here
gets the flow the generated README's "Write your own flow" shows, copied out of the
README as written, and the whole generated suite must then pass and cover it: the
generic tests (a failure injected into every task, retries, signals, estimates, the command line,
``prefect run -p``) run for the new flow with no other file edited.

The default bake's suite runs in tests/test_environments.py, inside a fresh venv per
Python and the way a user runs it (one test process per core). Here one bake that holds
both examples and the new flow runs the whole suite with its plumbing's own tests (the
``engine`` marker: bakery.py), once per template test run; the other bakes run the
suite a user runs, in one process each (``-n 0``), since this suite already keeps every
core busy; that also proves the generated tests need no particular order or parallelism.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import WITH_ENGINE, bake, package_of, run_generated_tests, run_in_project
from expected_files import FLOW_HELPERS, expected_flows

NEW_FLOW = "squares"
# What a plain ``pytest`` runs for every flow; each must have run for the new one.
GENERIC = [
    "test_flows.py::test_each_flow_runs_from_the_command_line_and_prints_its_result[squares]",
    "test_flows.py::test_a_failing_task_fails_the_run_naming_itself_and_closes_the_cluster[squares]",
    "test_flows.py::test_a_ctrl_c_while_it_computes_closes_its_cluster_and_says_so[squares]",
    "test_squares.py::test_squares_add_up",
]
# What the plumbing's own tests run for every flow (the ``engine`` marker). The new flow is of the
# DaskExecutor kind, as inc-double-add-sum is: the heaviest per-flow engine tests, which prove the
# same of every flow of a kind (every signal at every moment, a signal Python drops, resumed runs
# racing or after a code change, a gateway's cluster after a failure or a Ctrl-C), are left to the
# examples here, to keep the template's suite within its time (``FOR_THE_EXAMPLES``).
FOR_THE_EXAMPLES = (
    "every_signal_at_every_moment",
    "python_drops",
    "two_resumed_runs",
    "changed_code",
    "gateways_cluster_is_gone",
)
GENERIC_ENGINE = [
    "test_failures.py::test_a_failing_task_fails_the_flow_names_itself_and_closes_the_cluster[squares:",
    "test_failures.py::test_a_transient_failure_is_retried_on_the_same_cluster[squares:",
    "test_failures.py::test_prefect_run_rejects_bad_parameters_before_any_cluster[squares]",
    "test_estimates.py::test_more_worker_processes_than_the_cores_take_are_refused[squares]",
    "test_cli.py::test_each_flow_file_runs_with_prefect_run[squares]",
    "test_resume.py::test_a_resumed_run_restores_every_kept_result_and_starts_no_cluster_it_does_not_need[squares]",
    "test_resume.py::test_a_run_killed_right_after_keeping_a_result_resumes_from_it[squares]",
    "test_resume.py::test_a_changed_parameter_is_computed_again_and_both_stay_kept[squares]",
    "test_resume.py::test_a_corrupt_kept_result_is_computed_again_after_one_warning[squares]",
    "test_resume.py::test_prefect_run_resumes_when_the_environment_says_so[squares]",
    "test_attached_cluster.py::test_each_flow_runs_on_the_cluster_given_by_address_with_the_same_result[squares]",
    "test_gateway.py::test_each_flow_gets_a_cluster_from_the_gateway_and_it_is_gone_after_the_run[squares]",
    "test_unattended.py::test_serve_makes_each_date_a_whole_run_with_its_own_cluster[squares]",
    "test_unattended.py::test_a_run_prefects_own_runner_starts_is_recorded_and_alerted[squares]",
    "test_unattended.py::test_prefect_build_serializes_each_flow_for_a_prefect_server[squares]",
]

# The s3:// tests skip without the s3 and s3-test extras; the template's own .venv has them,
# so here they must really run.
S3_TESTS = [
    "test_timeseries.py::test_s3_data_in_and_summary_out_through_an_s3_compatible_server",
    "test_timeseries.py::test_sample_data_to_s3_then_the_flow_reads_it_there",
]


# The dask-gateway tests skip without the gateway and gateway-test extras; the template's
# own .venv has them, so here they must really run (every one: they need no flow in particular).
GATEWAY_MODULE = "test_gateway.py"


def readme_files(project: Path) -> dict[str, str]:
    """The files that the README's "Write your own flow" shows, by the path named just before each block."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Write your own flow\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"`([\w/.]+\.py)`:\n\n```python\n(.*?)```", section, re.DOTALL))


def add_the_readme_flow(project: Path) -> None:
    files = readme_files(project)
    assert sorted(files) == sorted([f"{package_of(project)}/flows/{NEW_FLOW}.py", f"tests/test_{NEW_FLOW}.py"])
    for relative, text in files.items():
        assert not (project / relative).exists()
        (project / relative).write_text(text, encoding="utf-8")


def delete_the_examples(project: Path, executor: str) -> None:
    package = package_of(project)
    for flow in expected_flows(executor):
        module = flow.replace("-", "_")
        for helper in [f"{module}.py", *FLOW_HELPERS.get(flow, [])]:
            (project / package / "flows" / helper).unlink()
        (project / "tests" / f"test_{module}.py").unlink()


def passed_tests(output: str) -> list[str]:
    """The tests that passed, from the ``-rA`` summary (``PASSED tests/x.py::name``)."""
    return [line.removeprefix("PASSED ") for line in output.splitlines() if line.startswith("PASSED ")]


def failures(output: str) -> str:
    """pytest's FAILURES section (each failed test's own output), else the output's tail."""
    start = output.find("= FAILURES =")
    return output[start : start + 20000] if start >= 0 else output[-6000:]


def assert_green_and_covering_the_new_flow(done: subprocess.CompletedProcess, expected: list[str]) -> None:
    assert done.returncode == 0, failures(done.stdout) + done.stderr[-2000:]
    passed = passed_tests(done.stdout)
    missing = [test for test in expected if not any(NEW_FLOW in name and test in name for name in passed)]
    assert not missing, f"generic tests that did not run for {NEW_FLOW}: {missing}"


@pytest.mark.slow(minutes=5)
def test_the_whole_suite_with_the_plumbings_own_tests_covers_every_kind_of_flow(tmp_path) -> None:
    """Both examples and the new flow, with the engine marker: the one run of the plumbing's tests."""
    project = bake(tmp_path)
    add_the_readme_flow(project)
    examples_only = f"not ({NEW_FLOW} and ({' or '.join(FOR_THE_EXAMPLES)}))"
    done = run_generated_tests(project, "-rA", *WITH_ENGINE, "-k", examples_only)
    assert_green_and_covering_the_new_flow(done, GENERIC + GENERIC_ENGINE)
    passed = passed_tests(done.stdout)
    skipped = [test for test in S3_TESTS if not any(test in name for name in passed)]
    assert not skipped, f"did not run (is s3fs or moto missing from the template's .venv?): {skipped}"
    gateway_skipped = [
        line for line in done.stdout.splitlines() if line.startswith("SKIPPED") and GATEWAY_MODULE in line
    ]
    assert any(GATEWAY_MODULE in name for name in passed) and not gateway_skipped, (
        f"the gateway tests did not run (is dask-gateway or dask-gateway-server missing from the template's .venv?): "
        f"{gateway_skipped}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    [{"executor": "LocalExecutor"}, {"executor": "DaskExecutor", "default_cluster": "coiled"}],
    ids=["LocalExecutor", "DaskExecutor-coiled-default"],
)
def test_a_flow_added_from_the_readme_is_covered_by_the_users_suite(answers: dict, tmp_path) -> None:
    project = bake(tmp_path, **answers)
    add_the_readme_flow(project)
    done = run_generated_tests(project, "-n", "0", "-rA")
    assert_green_and_covering_the_new_flow(done, GENERIC)
    assert "engine" not in " ".join(passed_tests(done.stdout)), "a plain pytest ran the plumbing's own tests"


@pytest.mark.slow
def test_a_project_without_the_examples_runs_its_own_flow_everywhere(tmp_path) -> None:
    project = bake(tmp_path)
    delete_the_examples(project, "both")
    add_the_readme_flow(project)
    assert_green_and_covering_the_new_flow(run_generated_tests(project, "-n", "0", "-rA"), GENERIC)

    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PYTHONPATH"] = str(project)
    made = subprocess.run(
        ["make", "run", f"FLOW={NEW_FLOW}", "CLUSTER=local", f"PYTHON={sys.executable}", "PARAMS=--param n=4"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.splitlines()[-2:] == [f"{NEW_FLOW}: Success", "14"]
    listed = run_in_project(project, "-m", package_of(project), "flows")
    assert [line for line in listed.stdout.splitlines() if not line.startswith(" ")] == [NEW_FLOW]
