"""pre-commit: every config validates, the code passes its own hooks (offline), and the hook pins cannot drift."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from bakery import CONTEXT, TEMPLATE_ROOT, bake
from gitrepo import copy_template
from precommit_offline import BIN, PRE_COMMIT_HOOKS, RUFF_PRE_COMMIT, offline_config, remote_revs, run_hooks
from test_bake import MATRIX, label

TEMPLATE_CONFIG = TEMPLATE_ROOT / ".pre-commit-config.yaml"
GENERATED_CONFIG_SOURCE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / ".pre-commit-config.yaml"


def validate_config(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", *map(str, paths)], capture_output=True, text=True, timeout=120
    )


def requirement_pin(name: str) -> str:
    text = (TEMPLATE_ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    [pin] = re.findall(rf"^{re.escape(name)}==(\S+)$", text, flags=re.MULTILINE)
    return pin


@pytest.fixture(scope="module", params=MATRIX, ids=label)
def baked(request, tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("bake"), **request.param)


def test_generated_config_validates(baked: Path) -> None:
    done = validate_config(baked / ".pre-commit-config.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_code_passes_its_configured_hooks(baked: Path, tmp_path: Path) -> None:
    project = Path(shutil.copytree(baked, tmp_path / "project"))  # fixers must not touch the shared bake
    done = run_hooks(project, project / ".pre-commit-config.yaml", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout and "Failed" not in done.stdout


def test_template_config_validates() -> None:
    done = validate_config(TEMPLATE_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_passes_its_own_hooks(tmp_path: Path) -> None:
    repo = copy_template(tmp_path / "template")
    done = run_hooks(repo, repo / ".pre-commit-config.yaml", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_offline_run_catches_a_hygiene_problem(tmp_path: Path) -> None:
    project = bake(tmp_path / "bake")
    with (project / "README.md").open("a", encoding="utf-8") as readme:
        readme.write("a line with trailing spaces   \n")
    done = run_hooks(project, project / ".pre-commit-config.yaml", tmp_path)
    assert done.returncode == 1
    assert re.search(r"^trailing-whitespace\.+Failed$", done.stdout, flags=re.MULTILINE), done.stdout


def test_an_unknown_hook_fails_instead_of_being_skipped() -> None:
    config = {"repos": [{"repo": PRE_COMMIT_HOOKS, "rev": "v6.0.0", "hooks": [{"id": "no-such-hook"}]}]}
    with pytest.raises(KeyError, match="no-such-hook"):
        offline_config(config)


def test_generated_config_source_is_plain_yaml_for_autoupdate(tmp_path: Path) -> None:
    """The scheduled ``pre-commit autoupdate`` edits the template file itself: it must not need Jinja."""
    source = GENERATED_CONFIG_SOURCE.read_text(encoding="utf-8")
    assert "{{" not in source and "{%" not in source
    assert (bake(tmp_path) / ".pre-commit-config.yaml").read_text(encoding="utf-8") == source


@pytest.mark.parametrize("config", [GENERATED_CONFIG_SOURCE, TEMPLATE_CONFIG], ids=["generated", "template"])
def test_hook_revs_match_the_tools_the_tests_run(config: Path) -> None:
    """The offline run proves something only if it runs the versions the config names."""
    revs = remote_revs(yaml.safe_load(config.read_text(encoding="utf-8")))
    assert set(revs) == {PRE_COMMIT_HOOKS, RUFF_PRE_COMMIT}
    assert revs[PRE_COMMIT_HOOKS] == f"v{requirement_pin('pre-commit-hooks')}"
    assert requirement_pin("pre-commit-hooks") == version("pre-commit-hooks")
    ruff_pins = {pins["ruff"] for pins in CONTEXT["_pins"].values()}
    assert ruff_pins == {version("ruff")}, "the config has one ruff rev: every pin set must name the same ruff"
    assert revs[RUFF_PRE_COMMIT] == f"v{version('ruff')}"
