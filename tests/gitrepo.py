"""Throwaway git repositories for tests: a copy of this template, commits without user config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


def git_env() -> dict[str, str]:
    """An identity for test commits that ignores the user's and the system's git config."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=git_env())
    return done.stdout


def commit_all(repo: Path, message: str) -> str:
    """Commit every change in ``repo`` (initialising it if needed); returns the new commit."""
    if not (repo / ".git").exists():
        git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def copy_template(dest: Path) -> Path:
    """The template's working tree as a user would clone it: tracked and new files, nothing ignored."""
    listed = git(TEMPLATE_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest
