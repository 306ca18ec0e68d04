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
    "alerts.py",
    "backends.py",
    "cli.py",
    "coiled_api.py",
    "contract.py",
    "doctor.py",
    "flow.py",
    "history.py",
    "local_workers.py",
    "plan.py",
    "results.py",
    "rules.py",
    "run.py",
    "session.py",
    "signals.py",
]
# The plumbing's own tests (the generated project's engine marker).
ENGINE_TESTS = [
    "conftest.py",
    "test_attached_cluster.py",
    "test_backends.py",
    "test_cli.py",
    "test_coiled.py",
    "test_contract.py",
    "test_diagram.py",
    "test_doctor.py",
    "test_estimates.py",
    "test_failures.py",
    "test_gateway.py",
    "other_versions.py",
    "test_plan.py",
    "test_report.py",
    "test_resume.py",
    "test_settings.py",
    "test_signals.py",
    "test_unattended.py",
]


def expected_files(answers: dict[str, str], package: str) -> set[str]:
    files = {
        ".gitignore",
        ".pre-commit-config.yaml",
        "Makefile",
        "README.md",
        "docs/clusters.md",
        "docs/data.md",
        "docs/design.md",
        "docs/flows.md",
        "docs/resume.md",
        "docs/settings.md",
        "docs/unattended.md",
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
        "tests/test_flows.py",
        *(f"tests/engine/{name}" for name in ENGINE_TESTS),
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
