"""The exact file set a bake must produce, derived from the answers alone."""

from __future__ import annotations

from bakery import CONTEXT

# The one table of which example flows each ``executor`` answer generates.
EXAMPLE_FLOWS: dict[str, list[str]] = CONTEXT["_example_flows"]
# What an example flow brings besides its module and its result tests.
FLOW_HELPERS = {
    "timeseries": ["timeseries_window.py", "timeseries_source.py", "timeseries_output.py", "timeseries_sample.py"]
}
PLUMBING = [
    "__init__.py",
    "attach.py",
    "choices.py",
    "cli.py",
    "cluster_flow.py",
    "command.py",
    "clusters.py",
    "coiled_access.py",
    "contract.py",
    "diagram.py",
    "doctor.py",
    "estimate.py",
    "executor.py",
    "gateway.py",
    "inside.py",
    "local_workers.py",
    "overrides.py",
    "project_clusters.py",
    "registry.py",
    "resource.py",
    "retry.py",
    "rules.py",
    "run_session.py",
    "runlog.py",
    "runner.py",
    "session.py",
    "signals.py",
    "versions.py",
]


def expected_files(answers: dict[str, str], package: str) -> set[str]:
    files = {
        ".gitignore",
        ".pre-commit-config.yaml",
        "Makefile",
        "README.md",
        "docs/design.md",
        "environment.yml",
        "pyproject.toml",
        f"{package}/__init__.py",
        f"{package}/__main__.py",
        f"{package}/settings.py",
        f"{package}/flows/__init__.py",
        *(f"{package}/plumbing/{name}" for name in PLUMBING),
        "tests/conftest.py",
        "tests/flowkit.py",
        "tests/held_open.py",
        "tests/test_attached_cluster.py",
        "tests/test_cli.py",
        "tests/test_clusters.py",
        "tests/test_coiled_access.py",
        "tests/test_contract.py",
        "tests/test_diagram.py",
        "tests/test_doctor.py",
        "tests/test_estimates.py",
        "tests/test_failures.py",
        "tests/test_gateway.py",
        "tests/test_project_clusters.py",
        "tests/test_report.py",
        "tests/test_settings.py",
        "tests/test_signals.py",
        "tests/test_versions.py",
    }
    for flow in expected_flows(answers["executor"]):
        module = flow.replace("-", "_")
        files |= {f"{package}/flows/{module}.py", f"tests/test_{module}.py"}
        files |= {f"{package}/flows/{helper}" for helper in FLOW_HELPERS.get(flow, [])}
    if answers["github_actions"] == "yes":
        files |= {".github/workflows/ci.yml", ".github/workflows/coiled.yml"}
    if answers["license"] != "none":
        files.add("LICENSE")
    return files


def expected_flows(executor: str) -> list[str]:
    """The example flows a bake generates, in the order the table lists them."""
    return list(EXAMPLE_FLOWS[executor])
