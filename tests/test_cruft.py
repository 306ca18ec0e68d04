"""Updates from the template with cruft, on a local git copy of this template (no network).

cruft records the template commit in ``.cruft.json``; ``cruft update`` renders the old
and the new commit into temporary folders (running the hooks there, never in the
project) and applies the difference as a patch, so the user's own edits survive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import TEMPLATE_ROOT, bake
from cookiecutter.generate import generate_context
from cookiecutter.hooks import run_hook_from_repo_dir
from cookiecutter.prompt import prompt_for_config
from gitrepo import commit_all, copy_template, git, git_env

CRUFT = str(Path(sys.executable).parent / "cruft")
SLUG = "timeseries-pipeline"


def cruft(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CRUFT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=git_env())


def change_template(template: Path) -> None:
    """A typical template release: a bumped pin and a new line in a generated file."""
    context_file = template / "cookiecutter.json"
    context = json.loads(context_file.read_text(encoding="utf-8"))
    context["_pins"]["3.11"]["pytest"] = "99.0.0"
    context_file.write_text(json.dumps(context, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with (template / "{{cookiecutter.project_slug}}" / ".gitignore").open("a", encoding="utf-8") as ignore:
        ignore.write("\n# Added by a later template release\n*.parquet\n")


@pytest.mark.slow
def test_create_check_then_update_keeps_the_users_work(tmp_path: Path) -> None:
    template = copy_template(tmp_path / "template")
    first = commit_all(template, "template v1")
    done = cruft(tmp_path, "create", "--no-input", "--output-dir", str(tmp_path / "projects"), str(template))
    assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path / "projects" / SLUG
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == first
    commit_all(project, "generated")
    done = cruft(project, "check")
    assert done.returncode == 0, done.stdout + done.stderr

    # The user's own work: an edited generated file, a new file, an empty folder git does not track.
    with (project / "README.md").open("a", encoding="utf-8") as readme:
        readme.write("\n## Team notes\n\nOur own section.\n")
    (project / "NOTES.md").write_text("ours\n", encoding="utf-8")
    commit_all(project, "our changes")
    (project / "data").mkdir()

    change_template(template)
    second = commit_all(template, "template v2")
    assert cruft(project, "check").returncode == 1  # out of date now

    done = cruft(project, "update", "-y")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "*.parquet" in (project / ".gitignore").read_text(encoding="utf-8")
    assert '"pytest==99.0.0"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "Our own section." in (project / "README.md").read_text(encoding="utf-8")
    assert (project / "NOTES.md").read_text(encoding="utf-8") == "ours\n"
    assert (project / "data").is_dir()
    assert not list(project.rglob("*.rej")) and not list(project.rglob("*.orig"))
    changed = {line[3:] for line in git(project, "status", "--porcelain").splitlines()}
    assert changed == {".cruft.json", ".gitignore", "pyproject.toml"}  # environment.yml installs pyproject's pins
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == second
    done = cruft(project, "check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_post_gen_hook_run_again_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cruft re-runs the hooks on every update: a second run must leave a project as it was."""
    project = bake(tmp_path)
    before = snapshot(project)
    monkeypatch.syspath_prepend(str(TEMPLATE_ROOT))  # the hook's Jinja environment loads local_extensions
    context = generate_context(context_file=str(TEMPLATE_ROOT / "cookiecutter.json"))
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    run_hook_from_repo_dir(str(TEMPLATE_ROOT), "post_gen_project", str(project), context, False)
    assert snapshot(project) == before


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() for p in root.rglob("*")}
