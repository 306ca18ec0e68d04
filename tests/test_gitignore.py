"""The generated .gitignore: what the README asks to commit can be committed, and what its
commands leave in the project folder is ignored.

Paths are read from the generated README's own commands, so a command that moves its
output moves what this test checks. A user's ``git add .`` is the measure: after it,
``git status`` must list every generated file and every committable file as added, and
nothing else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bakery import DEFAULTS, bake, package_of
from gitrepo import git, git_env
from test_generated_suites import readme_files

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

FLOWS = DEFAULTS["_example_flows"][DEFAULTS["executor"]]


def from_readme(readme: str, pattern: str) -> str:
    """The one path a README command names, where ``pattern``'s group sits."""
    found = re.findall(pattern, readme)
    assert found, f"the README no longer has a command matching {pattern!r}"
    return found[0]


def scratch_files(readme: str) -> list[str]:
    """Files that the README's commands, the tools and the project's runs write into the project folder."""
    sample = from_readme(readme, r"sample-data (\S+) ")
    output = from_readme(readme, r"--param output=(?![a-z0-9]+://)(\S+)")
    report = from_readme(readme, r"--report (\S+)")
    diagrams = from_readme(readme, r"diagram +# (\S+)/<flow>\.png")
    return [
        f"{sample}/part.0.parquet",
        output,
        f".{output}.k3j9x2.tmp",  # the output's staging file, left only by a run killed outright
        report,
        *(f"{diagrams}/{flow}.png" for flow in FLOWS),
        # The run history and the saved results that runs keep in the project folder.
        ".runs.sqlite",
        ".runs.sqlite-wal",
        ".runs.sqlite-shm",
        ".results/timeseries/summary.parquet",
        ".ruff_cache/CACHEDIR.TAG",  # make lint
        ".pytest_cache/CACHEDIR.TAG",  # pytest
        ".venv/bin/python",  # make venv
    ]


def committable_files(readme: str, project: Path) -> list[str]:
    """Files that the README asks a user to create and keep in the repository."""
    docs = from_readme(readme, r"diagram --output-dir (\S+)")
    return [
        *(f"{docs}/{flow}.png" for flow in FLOWS),
        *readme_files(project),  # "Write your own flow": a flow module and its test
        f"{package_of(project)}/data/lookup.csv",  # a package's own data folder is not the sample data
    ]


def check_ignore(project: Path, paths: list[str]) -> list[str]:
    """The paths among ``paths`` that git ignores (``git check-ignore`` exits 1 when none is)."""
    done = subprocess.run(
        ["git", "check-ignore", *paths], cwd=project, capture_output=True, text=True, timeout=60, env=git_env()
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.splitlines()


def test_readme_outputs_are_ignored_and_what_it_asks_to_commit_is_not(tmp_path: Path) -> None:
    project = bake(tmp_path)
    readme = (project / "README.md").read_text(encoding="utf-8")
    generated = {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}
    git(project, "init", "--quiet")
    scratch, committable = scratch_files(readme), committable_files(readme, project)
    for relative in [*scratch, *committable]:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_bytes(b"\x89PNG\r\n" if relative.endswith(".png") else b"x\n")

    assert check_ignore(project, scratch) == scratch
    assert check_ignore(project, committable) == []
    git(project, "add", "--all")
    status = git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == sorted(f"A  {path}" for path in generated | set(committable))
