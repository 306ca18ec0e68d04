"""The pre-generation hook and the generated project read every setting with the same rules.

The hook loads ``plumbing/rules.py`` from the template; a baked project reads its
``<PREFIX>_*`` variables with its own copy. For a table of valid and invalid values of
every answer that is a setting, both must accept the same values and refuse the others
with the same words (the hook names the answer, the project the variable).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bakery import TEMPLATE_ROOT, bake, package_of, run_in_project
from hookkit import BASE_ANSWERS, load_hook

HOOK = load_hook("pre_gen_project", BASE_ANSWERS)
RULES_FILE = Path("{{cookiecutter.project_slug}}", "{{cookiecutter.package_name}}", "plumbing", "rules.py")
AWKWARD = ["", "  ", "0", "-1", "2", "1e20", "inf", "nan", "\u00b2", "\u0663", "9" * 40, "text"]
VALID = {
    "default_cluster": ["local", "coiled", " coiled ", "gateway", "tcp://10.0.0.5:8786", "host:port"],
    "coiled_workspace": ["my-team", "a_b"],
    "coiled_region": ["us-east-1", "eastus2"],
    "coiled_n_workers": ["1", "1000", "1001"],
    "coiled_worker_cpu": ["1", "1024", "1025"],
    "coiled_worker_memory": ["16GiB", "8 GB", "1.5 TiB", "512MiB", "1TiB"],
    "coiled_idle_timeout": ["20 minutes", "45m", "7 days", "59s", "8d"],
    "coiled_spot_policy": ["spot", "on-demand", "Spot"],
}
TABLE = [(answer, value) for answer in HOOK.RULES.ANSWERS for value in AWKWARD + VALID[answer]]

# Run inside the baked project: what its own rules make of each value, read from the environment.
READ_IN_PROJECT = """
import json, sys
from {package}.plumbing.plan import cluster_spec, setting
from {package}.plumbing.rules import SettingError
from {package}.settings import ENV_PREFIX

seen = {{}}
for key, value in json.loads(sys.argv[1]):
    try:
        setting(key, {{ENV_PREFIX + key: value}})
        seen[f"{{key}}={{value}}"] = None
    except SettingError as error:
        seen[f"{{key}}={{value}}"] = str(error)
try:
    cluster_spec("coiled", "f", environ={{ENV_PREFIX + "COILED_WORKER_MEMORY": "1TiB", ENV_PREFIX + "COILED_WORKER_CPU": "4"}})
except SettingError as error:
    seen["ratio"] = str(error)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def project_reading(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    project = bake(tmp_path_factory.mktemp("agree"))
    package = package_of(project)
    assert (project / package / "plumbing" / "rules.py").read_bytes() == (TEMPLATE_ROOT / RULES_FILE).read_bytes()
    pairs = [(HOOK.RULES.ANSWERS[answer], value) for answer, value in TABLE]
    done = run_in_project(project, "-c", READ_IN_PROJECT.format(package=package), json.dumps(pairs), timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), package.upper() + "_"


@pytest.mark.parametrize(("answer", "value"), TABLE)
def test_hook_and_project_agree(answer: str, value: str, project_reading: tuple[dict, str]) -> None:
    seen, prefix = project_reading
    key = HOOK.RULES.ANSWERS[answer]
    hook_lines = HOOK.problems_with({**BASE_ANSWERS, answer: value}, Path("/nonexistent"))
    own = [line.removeprefix(f"{answer}: ") for line in hook_lines if line.startswith(f"{answer}: ")]
    at_run_time = seen[f"{key}={value}"]
    if at_run_time is None:
        assert own == [] or "per vCPU" in own[0], own
    else:
        assert own == [at_run_time.removeprefix(f"{prefix}{key}: ")]


def test_memory_per_vcpu_agrees(project_reading: tuple[dict, str]) -> None:
    seen, prefix = project_reading
    [line] = HOOK.problems_with({**BASE_ANSWERS, "coiled_worker_memory": "1TiB"}, Path("/nonexistent"))
    assert line.replace("coiled_worker_cpu", f"{prefix}COILED_WORKER_CPU") == seen["ratio"].replace(
        f"{prefix}COILED_WORKER_MEMORY", "coiled_worker_memory"
    )
