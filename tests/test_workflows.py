"""GitHub Actions workflows, generated and the template's own: valid YAML, valid against
GitHub's workflow schema (the copy vendored in check-jsonschema, so offline), and wired
to the right environment, commands and secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bakery import CHOICES, CONTEXT, DEFAULTS, TEMPLATE_ROOT, bake, package_of
from test_bake import MATRIX, label

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
WITH_ACTIONS = [answers for answers in MATRIX if answers.get("github_actions", "yes") == "yes"]


def check_schema(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def steps_of(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs_of(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps_of(workflow))


def micromamba_settings(workflow: dict) -> dict:
    [micromamba] = [s for s in steps_of(workflow) if s.get("uses", "").startswith("mamba-org/setup-micromamba@")]
    return micromamba["with"]


# The generated workflows' environment: cached, and rebuilt when the pins move (they are in pyproject.toml).
GENERATED_MICROMAMBA = {
    "environment-file": "environment.yml",
    "cache-environment": True,
    "cache-environment-key": "environment-${{ hashFiles('pyproject.toml') }}",
    "cache-downloads": True,
}


@pytest.fixture(scope="module", params=WITH_ACTIONS, ids=label)
def baked(request, tmp_path_factory) -> tuple[dict, Path]:
    answers = {**{k: v for k, v in DEFAULTS.items() if not k.startswith("_")}, **request.param}
    return answers, bake(tmp_path_factory.mktemp("bake"), **request.param)


def test_generated_workflows_match_the_github_schema(baked) -> None:
    _, project = baked
    workflows = sorted((project / ".github" / "workflows").iterdir())
    assert [p.name for p in workflows] == ["ci.yml", "coiled.yml"]
    done = check_schema(*workflows)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_builds_the_conda_env_then_runs_pre_commit_and_tests(baked) -> None:
    _, project = baked
    workflow = load(project / ".github" / "workflows" / "ci.yml")
    assert micromamba_settings(workflow) == GENERATED_MICROMAMBA
    assert workflow["jobs"]["test"]["defaults"]["run"]["shell"] == "bash -el {0}"  # activates the environment
    commands = runs_of(workflow)
    assert "pre-commit run --all-files" in commands and "pytest" in commands
    assert workflow["concurrency"]["group"] == "${{ github.workflow }}-${{ github.ref }}"


def test_coiled_workflow_runs_any_flow_by_name_by_hand_and_on_the_schedule_asked_for(baked) -> None:
    answers, project = baked
    workflow = load(project / ".github" / "workflows" / "coiled.yml")
    assert micromamba_settings(workflow) == GENERATED_MICROMAMBA
    trigger = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    schedule = answers["coiled_schedule"]
    assert list(trigger) == ["workflow_dispatch", "schedule"] if schedule else ["workflow_dispatch"]
    flow = trigger["workflow_dispatch"]["inputs"]["flow"]
    assert flow["type"] == "string" and flow["required"] is True and "default" not in flow  # the CLI checks the name
    [run] = [s for s in steps_of(workflow) if s.get("name") == "Run on Coiled"]
    package = package_of(project)
    first = CONTEXT["_example_flows"][answers["executor"]][0]
    by_hand = {"FLOW": "${{ inputs.flow }}", "PARAMS": "${{ inputs.params }}"}
    scheduled = {
        "FLOW": f"${{{{ inputs.flow || vars.SCHEDULED_FLOW || '{first}' }}}}",
        "PARAMS": "${{ inputs.params || vars.SCHEDULED_PARAMS }}",
    }
    assert run["env"] == {
        "DASK_COILED__TOKEN": "${{ secrets.COILED_TOKEN }}",
        f"{package.upper()}_SLACK_WEBHOOK_URL": "${{ secrets.SLACK_WEBHOOK_URL }}",
        **(scheduled if schedule else by_hand),
    }
    if schedule:
        assert trigger["schedule"] == [{"cron": schedule}]
    assert f'python -m {package} run "$FLOW" --cluster coiled' in run["run"]
    assert "${{" not in run["run"], "inputs must reach the script through env, never pasted into it"


@pytest.mark.parametrize("spelled", ["0 6 * * *", " 30  2 1,15 * * ", "*/15 8-18 * JAN-MAR mon-fri"])
def test_the_schedule_lands_in_the_workflow_in_its_five_fields(spelled: str, tmp_path: Path) -> None:
    path = bake(tmp_path, coiled_schedule=spelled) / ".github" / "workflows" / "coiled.yml"
    assert load(path)[True]["schedule"] == [{"cron": " ".join(spelled.split())}]
    done = check_schema(path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_coiled_client_reads_the_token_variable_the_workflow_sets() -> None:
    """Coiled takes its token from dask config key ``coiled.token``, which DASK_COILED__TOKEN sets."""
    done = subprocess.run(
        [sys.executable, "-c", "import coiled, dask.config; print(dask.config.get('coiled.token'))"],
        env={**os.environ, "DASK_COILED__TOKEN": "token-from-secret"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "token-from-secret", done.stderr


def test_no_workflows_when_github_actions_is_no(tmp_path: Path) -> None:
    project = bake(tmp_path, github_actions="no")
    assert not (project / ".github").exists()


def test_template_workflows_match_the_github_schema() -> None:
    workflows = sorted((TEMPLATE_ROOT / ".github" / "workflows").glob("*.yml"))
    assert [p.name for p in workflows] == ["pre-commit-autoupdate.yml", "test.yml"]
    done = check_schema(*workflows)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_ci_runs_make_test_on_linux_and_macos() -> None:
    workflow = load(TEMPLATE_ROOT / ".github" / "workflows" / "test.yml")
    assert workflow["jobs"]["make-test"]["strategy"]["matrix"]["os"] == ["ubuntu-latest", "macos-latest"]
    assert workflow["jobs"]["make-test"]["steps"][-1]["run"] == ".ci/run"
    assert (TEMPLATE_ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip().splitlines()[-1] == "make test"


def test_template_ci_builds_each_pythons_conda_environment_and_runs_doctor_and_tests_in_it(tmp_path: Path) -> None:
    """The proof this machine cannot give (conda-forge is out of its reach): the job that gives it, checked."""
    workflow = load(TEMPLATE_ROOT / ".github" / "workflows" / "test.yml")
    job = workflow["jobs"]["conda-env"]
    assert job["strategy"]["matrix"] == {"os": ["ubuntu-latest", "macos-latest"], "python": CHOICES["python_version"]}
    assert job["defaults"]["run"]["shell"] == "bash -el {0}"  # activates the micromamba environment
    project = bake(tmp_path)  # the defaults, as the job bakes them
    folder = f"build/conda/{project.name}"
    bake_step, micromamba, *in_environment = job["steps"][2:]
    assert bake_step["run"].splitlines()[-1] == (
        'cookiecutter --no-input --output-dir build/conda . "python_version=${{ matrix.python }}"'
    )
    assert micromamba["uses"].startswith("mamba-org/setup-micromamba@")
    assert micromamba["with"] == {
        "environment-file": f"{folder}/environment.yml",
        "cache-downloads": True,
    }  # built anew
    assert {step["working-directory"] for step in in_environment} == {folder}
    commands = [line for step in in_environment for line in step["run"].splitlines()]
    assert f"python -m {package_of(project)} doctor | tee doctor.txt" in commands
    from_conda = [name for name, entry in CONTEXT["_conda_forge"].items() if entry.get("version_from") == "_pins"]
    assert f'grep -F "installed by conda ({", ".join(from_conda)})" doctor.txt' in commands
    assert commands[-1] == "pytest"


def test_autoupdate_refreshes_both_configs_on_a_schedule_and_opens_a_pr() -> None:
    workflow = load(TEMPLATE_ROOT / ".github" / "workflows" / "pre-commit-autoupdate.yml")
    assert "schedule" in workflow[True]
    commands = runs_of(workflow)
    assert "pre-commit autoupdate --config .pre-commit-config.yaml" in commands
    assert "pre-commit autoupdate --config '{{cookiecutter.project_slug}}/.pre-commit-config.yaml'" in commands
    assert any(s.get("uses", "").startswith("peter-evans/create-pull-request@") for s in steps_of(workflow))


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    project = bake(tmp_path / "bake")
    text = (project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("    steps:", "    stepz:"), encoding="utf-8")
    done = check_schema(broken)
    assert done.returncode == 1 and "'stepz' was unexpected" in done.stdout
