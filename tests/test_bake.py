"""Every supported option combination bakes into a clean, parseable, lint-free project."""

from __future__ import annotations

import itertools
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bakery import CHOICES, DEFAULTS, bake, package_of
from expected_files import expected_files

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

RUFF = str(Path(sys.executable).parent / "ruff")

# The full cross product of the options that change generated code, plus one
# bake per remaining choice (license, CI), so every value is covered.
MATRIX = [
    dict(zip(("executor", "default_cluster", "python_version"), combo))
    for combo in itertools.product(CHOICES["executor"], CHOICES["default_cluster"], CHOICES["python_version"])
]
MATRIX += [{"license": value} for value in CHOICES["license"][1:]]
MATRIX += [{"github_actions": value} for value in CHOICES["github_actions"][1:]]
# The Coiled workflow on a cron schedule (the default bakes have none).
MATRIX += [{"coiled_schedule": "0 6 * * mon-fri"}]


GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]+ \}\}")


def label(answers: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in answers.items())


@pytest.fixture(scope="module", params=MATRIX, ids=label)
def baked(request, tmp_path_factory) -> tuple[dict, Path]:
    answers = {**{k: v for k, v in DEFAULTS.items() if not k.startswith("_")}, **request.param}
    return answers, bake(tmp_path_factory.mktemp("bake"), **request.param)


def files_of(project: Path) -> set[str]:
    return {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}


def test_exact_file_set(baked) -> None:
    answers, project = baked
    assert files_of(project) == expected_files(answers, package_of(project))


def test_no_empty_folders(baked) -> None:
    _, project = baked
    assert [p for p in project.rglob("*") if p.is_dir() and not any(p.iterdir())] == []


def test_no_template_syntax_survives(baked) -> None:
    _, project = baked
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if path.parent.name == "workflows":  # GitHub's own ${{ ... }} expressions must survive
                text = GITHUB_EXPRESSION.sub("", text)
            for marker in ("{{", "}}", "{%", "%}", "{#"):
                assert marker not in text, f"{marker} left in {path.relative_to(project)}"


def test_data_files_parse(baked) -> None:
    answers, project = baked
    for path in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        assert yaml.safe_load(path.read_text(encoding="utf-8")) is not None, path
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"].startswith(f">={answers['python_version']},")


def test_python_compiles(baked, tmp_path) -> None:
    _, project = baked
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_ruff_lint_and_format_pass(baked) -> None:
    _, project = baked
    for command in ([RUFF, "check", "--no-cache", "."], [RUFF, "format", "--check", "--no-cache", "."]):
        done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


# A new user reads the README in ten minutes; depth goes to docs/. The plumbing stays a
# handful of modules a reader holds in an afternoon.
README_MAX_LINES = 250
PLUMBING_MAX_MODULES = 16


def test_the_readme_is_short_and_the_plumbing_a_handful_of_modules(baked) -> None:
    _, project = baked
    lines = (project / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move depth to docs/"
    modules = list((project / package_of(project) / "plumbing").glob("*.py"))
    assert len(modules) <= PLUMBING_MAX_MODULES, sorted(module.name for module in modules)
