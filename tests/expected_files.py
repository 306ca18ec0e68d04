"""The exact file set a bake must produce, derived from the answers alone."""

from __future__ import annotations


def expected_files(answers: dict[str, str], package: str) -> set[str]:
    executor = answers["executor"]
    local_flow = executor in ("both", "LocalExecutor")
    dask_flow = executor in ("both", "DaskExecutor")
    files = {
        ".gitignore",
        ".pre-commit-config.yaml",
        "Makefile",
        "README.md",
        "environment.yml",
        "pyproject.toml",
        f"{package}/__init__.py",
        f"{package}/__main__.py",
        f"{package}/cli.py",
        f"{package}/clusters.py",
        f"{package}/diagram.py",
        f"{package}/doctor.py",
        f"{package}/flows/__init__.py",
        f"{package}/retry.py",
        f"{package}/runlog.py",
        f"{package}/runner.py",
        f"{package}/session.py",
        f"{package}/versions.py",
        "tests/conftest.py",
        "tests/test_cli.py",
        "tests/test_clusters.py",
        "tests/test_diagram.py",
        "tests/test_doctor.py",
        "tests/test_failures.py",
        "tests/test_versions.py",
    }
    if local_flow:
        files |= {
            f"{package}/flows/timeseries.py",
            f"{package}/parameters.py",
            "tests/test_timeseries.py",
        }
    if dask_flow:
        files |= {
            f"{package}/flows/inc_double_add_sum.py",
            f"{package}/executor.py",
            "tests/test_inc_double_add_sum.py",
        }
    if answers["github_actions"] == "yes":
        files |= {".github/workflows/ci.yml", ".github/workflows/coiled.yml"}
    if answers["license"] != "none":
        files.add("LICENSE")
    return files


def expected_flows(executor: str) -> list[str]:
    """The flow names a bake registers, in the order the Makefile and the workflows list them."""
    flows = []
    if executor != "DaskExecutor":
        flows.append("timeseries")
    if executor != "LocalExecutor":
        flows.append("inc-double-add-sum")
    return flows
