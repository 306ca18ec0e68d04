"""Odd but valid answers bake into a project whose every file parses and keeps the answer.

Quotes, apostrophes, backslashes, triple quotes, Markdown punctuation, non-ASCII letters
(emoji outside the Basic Multilingual Plane included) and the longest allowed values pass
the hook, land in TOML, YAML, Markdown, Python and the license, and read back exactly.
Each odd bake is compared with a plain bake of the same choices, so an answer that turned
into markup or changed a file's structure shows up. The generated test suite runs once,
on the bake that combines long and odd values.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bakery import run_generated_tests
from hookkit import BASE_ANSWERS, MARKDOWN, bake_isolated, plain_text

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

RUFF = str(Path(sys.executable).parent / "ruff")
QUOTES = 'O\'Brien "Quoted" \\ back\\slash """ \'\'\' `tick` *star* _under_ <b>tag</b> # | C# & $5 [x](y) ~~s~~'
UNICODE = "Ünïcødé Pipeline 日本語 עברית 😀 👩\u200d💻 𝔘𝔫𝔦 ﬀ"
ODD_BAKES = {
    "quotes": {
        "project_name": QUOTES,
        "description": f"``` 1. starts like a list; {QUOTES}",
        "author_name": 'O\'Brien "Bob" \\ Jr.',
        "author_email": "o'brien+tag@example.co.uk",
        "executor": "LocalExecutor",
        "license": "BSD-3-Clause",
    },
    "unicode": {
        "project_name": UNICODE,
        "description": "Données « météo » — 東京 🌧️ ∑ x² 𐍈 عربى",
        "author_name": "Zoë Łukasiewicz 李雷 🦊",
        "author_email": "zoe@exämple.de",
        "executor": "DaskExecutor",
        "python_version": "3.9",
        "license": "none",
        "github_actions": "no",
    },
    "long": {
        "project_name": (f"{UNICODE} {QUOTES} " * 3)[:200],
        "project_slug": "a-project-slug-of-the-longest-length-allowed-by-the-hook-123456",
        "package_name": "a_package_name_of_forty_characters_12345",
        "description": (f"{QUOTES} {UNICODE} " * 5)[:512],
        "author_name": (f"{UNICODE} O'Brien " * 10)[:200],
        "author_email": "first.last+pipelines@data-engineering.example.co.uk",
        "default_cluster": "coiled",
        "coiled_workspace": "a-workspace-of-the-longest-length-allowed-by-the-hook-123456789",
        "coiled_region": "northamerica-northeast1",
        "coiled_n_workers": "1000",
        "coiled_worker_cpu": "896",
        "coiled_worker_memory": "24 TiB",
        "coiled_idle_timeout": "7 days",
        "coiled_spot_policy": "on-demand",
        "license": "Apache-2.0",
    },
}
CHOSEN = ("executor", "default_cluster", "python_version", "license", "github_actions")


@pytest.fixture(scope="module", params=ODD_BAKES, ids=str)
def baked(request, tmp_path_factory) -> tuple[Path, dict, Path]:
    """The odd bake, the answers the hooks saw, and a plain bake with the same choices."""
    odd = ODD_BAKES[request.param]
    project, answers = bake_isolated(tmp_path_factory.mktemp("odd"), **odd)
    same_choices = {key: value for key, value in odd.items() if key in CHOSEN}
    plain, _ = bake_isolated(tmp_path_factory.mktemp("plain"), **{**BASE_ANSWERS, **same_choices})
    return project, answers, plain


def files_of(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file())


def test_both_bakes_hold_the_same_files(baked) -> None:
    project, answers, plain = baked
    package, plain_package = answers["package_name"], BASE_ANSWERS["package_name"]
    renamed = sorted(p.relative_to(project).as_posix().replace(package, plain_package) for p in files_of(project))
    assert renamed == [p.relative_to(plain).as_posix() for p in files_of(plain)]


def test_every_file_parses(baked) -> None:
    project, _, _ = baked
    for path in files_of(project):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in (".yml", ".yaml"):
            assert yaml.safe_load(text) is not None, path
        elif path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix == ".md":
            MARKDOWN.parse(text)


def test_pyproject_and_environment_keep_the_answers(baked) -> None:
    project, answers, _ = baked
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["name"] == answers["project_slug"]
    assert metadata["description"] == answers["description"]
    assert metadata["authors"] == [{"name": answers["author_name"], "email": answers["author_email"]}]
    environment = yaml.safe_load((project / "environment.yml").read_text(encoding="utf-8"))
    assert environment["name"] == answers["project_slug"]


def test_readme_shows_the_answers_as_written_and_keeps_its_structure(baked) -> None:
    project, answers, plain = baked
    tokens = MARKDOWN.parse((project / "README.md").read_text(encoding="utf-8"))
    plain_tokens = MARKDOWN.parse((plain / "README.md").read_text(encoding="utf-8"))
    assert [(t.type, t.tag) for t in tokens] == [(t.type, t.tag) for t in plain_tokens]
    assert tokens[0].tag == "h1" and plain_text(tokens[1]) == " ".join(answers["project_name"].split())
    assert tokens[3].type == "paragraph_open" and plain_text(tokens[4]) == " ".join(answers["description"].split())


def test_license_names_the_author(baked) -> None:
    project, answers, _ = baked
    if answers["license"] == "none":
        assert not (project / "LICENSE").exists()
    else:
        assert answers["author_name"] in (project / "LICENSE").read_text(encoding="utf-8")


def test_ruff_lint_and_format_pass(baked) -> None:
    project, _, _ = baked
    for command in ([RUFF, "check", "--no-cache", "."], [RUFF, "format", "--check", "--no-cache", "."]):
        done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_generated_suite_passes_for_long_odd_answers(tmp_path) -> None:
    project, _ = bake_isolated(tmp_path, **ODD_BAKES["long"])
    # One process: this suite already runs one test per core. The odd names reach the
    # imports and paths, not the engines, so the per-flow engine tests are left to other bakes.
    done = run_generated_tests(project, "-n", "0")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
