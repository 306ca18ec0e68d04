"""No secret lands in a generated repository: the token lives outside it, and stray copies are ignored."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from bakery import bake

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

# Where a token or local environment could end up inside a project folder.
SECRET_FILES = [
    ".env",
    ".env.local",
    "coiled.token",
    "coiled.yaml",
    ".dask/coiled.yaml",
    ".coiled/config.yaml",
    ".prefect/config.toml",
    ".venv/bin/python",
]


def git(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module", params=["yes", "no"], ids=["github_actions", "no_github_actions"])
def project(request, tmp_path_factory) -> tuple[str, Path]:
    project = bake(tmp_path_factory.mktemp("secrets"), github_actions=request.param)
    assert git(project, "init", "-q").returncode == 0
    return request.param, project


def test_token_and_local_environment_files_are_ignored_and_project_files_are_not(project) -> None:
    _, project = project
    generated = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts}
    for name in SECRET_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("token: not-a-real-token\n", encoding="utf-8")

    ignored = git(project, "check-ignore", *SECRET_FILES).stdout.split()
    assert sorted(ignored) == sorted(SECRET_FILES)
    added = git(project, "add", "--all", "--dry-run").stdout.splitlines()
    assert {line.removeprefix("add '").removesuffix("'") for line in added} == generated


def test_readme_says_where_the_token_lives(project) -> None:
    github_actions, project = project
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "coiled login" in readme and "~/.config/dask/coiled.yaml" in readme
    assert "nothing in this\nproject reads or stores it" in readme
    if github_actions == "yes":
        assert "repository secret `COILED_TOKEN`" in readme
        assert "secrets.COILED_TOKEN" in (project / ".github/workflows/coiled.yml").read_text(encoding="utf-8")
    else:
        assert "`DASK_COILED__TOKEN`" in readme and not (project / ".github").exists()
