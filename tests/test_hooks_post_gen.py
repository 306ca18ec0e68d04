"""The post-generation hook: removes what the options left empty, runs again without
changing anything (cruft re-runs it on update), touches no git, network or environment,
and prints next steps that match the generated project exactly."""

from __future__ import annotations

import ast
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from bakery import TEMPLATE_ROOT, run_in_project
from expected_files import expected_flows
from hookkit import bake_isolated, load_hook

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with its content (None for a folder)."""
    return {path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes() for path in root.rglob("*")}


def steps(printed: str) -> list[str]:
    """The command lines of the printed next steps."""
    return [line.strip() for line in printed.splitlines() if line.startswith("  ")]


def test_second_run_changes_nothing_and_prints_the_same(tmp_path, capfd, monkeypatch) -> None:
    project, answers = bake_isolated(tmp_path, github_actions="no")
    first = capfd.readouterr().out
    before = snapshot(project)
    monkeypatch.chdir(project)
    assert load_hook("post_gen_project", answers).main() == 0
    assert snapshot(project) == before
    assert capfd.readouterr().out.strip() == first.strip()
    assert steps(first)


def test_folders_left_empty_by_the_options_are_removed(tmp_path) -> None:
    """Without GitHub Actions both workflow files are skipped, so .github would be empty."""
    project, _ = bake_isolated(tmp_path, github_actions="no")
    assert not (project / ".github").exists()
    assert [p for p in project.rglob("*") if p.is_dir() and not any(p.iterdir())] == []


def test_remove_empty_folders_keeps_files_and_git(tmp_path) -> None:
    for folder in ("empty/nested/deeper", "kept/nested", ".git/refs/tags", "also-empty"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "kept" / "nested" / "file.txt").write_text("x", encoding="utf-8")
    load_hook("post_gen_project", {}).remove_empty_folders(tmp_path)
    assert sorted(snapshot(tmp_path)) == [
        ".git",
        ".git/refs",
        ".git/refs/tags",
        "kept",
        "kept/nested",
        "kept/nested/file.txt",
    ]


def test_hook_imports_nothing_that_reaches_git_network_or_environments() -> None:
    tree = ast.parse((TEMPLATE_ROOT / "hooks" / "post_gen_project.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "json", "pathlib", "shlex", "sys"}


def test_bake_creates_no_repository_or_environment(tmp_path) -> None:
    project, _ = bake_isolated(tmp_path)
    assert not {".git", ".venv", "build"} & {path.name for path in project.iterdir()}
    assert not list(project.rglob("*.egg-info"))


@pytest.mark.parametrize("executor", ["LocalExecutor", "DaskExecutor"])
def test_next_steps_run_only_generated_flows(executor: str, tmp_path, capfd) -> None:
    project, answers = bake_isolated(tmp_path, executor=executor)
    runs = [line.split()[4] for line in steps(capfd.readouterr().out) if " run " in line and "--cluster local" in line]
    flows = project / answers["package_name"] / "flows"
    declared = sorted(p.name for p in flows.glob("[!_]*.py") if "\nFLOW = declare(" in p.read_text(encoding="utf-8"))
    assert [f"{name.replace('-', '_')}.py" for name in runs] == declared


@pytest.mark.slow
def test_next_steps_match_the_project(tmp_path, capfd) -> None:
    """Each printed command names what the project really has: its folder, conda env,
    Python, pip extra, package and (asking the generated CLI itself) its flows."""
    project, answers = bake_isolated(tmp_path / "with space", default_cluster="coiled")
    printed = steps(capfd.readouterr().out)
    package = answers["package_name"]
    environment = yaml.safe_load((project / "environment.yml").read_text(encoding="utf-8"))
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert printed[0] == f"cd {shlex.quote(str(project))}" and " " in str(project)
    assert printed[1] == f"conda env create -f environment.yml && conda activate {environment['name']}"
    assert f"python{answers['python_version']} -m venv" in printed[2]
    assert pyproject["requires-python"].startswith(f">={answers['python_version']},")
    assert printed[2].endswith('pip install -e ".[dev,diagram]"')
    assert {"dev", "diagram"} <= set(pyproject["optional-dependencies"])
    listed = run_in_project(project, "-m", package, "flows")
    assert listed.returncode == 0, listed.stderr
    flows = [line for line in listed.stdout.splitlines() if line and not line.startswith(" ")]
    examples = expected_flows("both")
    assert sorted(flows) == sorted(examples)
    assert [line for line in printed if "--cluster local" in line] == [
        f"python -m {package} run {flow} --cluster local" for flow in examples
    ]
    assert printed[-1] == f"coiled login && python -m {package} run {examples[0]} --cluster coiled"
