"""Run a ``.pre-commit-config.yaml`` offline: same hooks, same file selection, no clone.

pre-commit normally clones each hook repository from GitHub, which tests cannot reach.
The tools themselves are installed here (ruff from the pin table, pre-commit-hooks from
requirements-dev.txt), so each remote hook becomes a ``local`` hook with
``language: system`` whose entry and file types are copied from the hook repository's
own ``.pre-commit-hooks.yaml``. pre-commit then applies the config's ``args``,
``exclude``, ``files`` and ``types`` exactly as it would with the real repositories.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from gitrepo import git, git_env

BIN = Path(sys.executable).parent
PRE_COMMIT_HOOKS = "https://github.com/pre-commit/pre-commit-hooks"
RUFF_PRE_COMMIT = "https://github.com/astral-sh/ruff-pre-commit"

# entry and file filter of each hook, from the manifests of pre-commit-hooks v6.0.0 and
# ruff-pre-commit v0.17.6. A hook missing here fails loudly instead of being skipped.
MANIFESTS: dict[str, dict[str, dict]] = {
    PRE_COMMIT_HOOKS: {
        "check-added-large-files": {"entry": "check-added-large-files"},
        "check-case-conflict": {"entry": "check-case-conflict"},
        "check-executables-have-shebangs": {
            "entry": "check-executables-have-shebangs",
            "types": ["text", "executable"],
        },
        "check-json": {"entry": "check-json", "types": ["json"]},
        "check-merge-conflict": {"entry": "check-merge-conflict", "types": ["text"]},
        "check-toml": {"entry": "check-toml", "types": ["toml"]},
        "check-yaml": {"entry": "check-yaml", "types": ["yaml"]},
        "detect-private-key": {"entry": "detect-private-key", "types": ["text"]},
        "end-of-file-fixer": {"entry": "end-of-file-fixer", "types": ["text"]},
        "mixed-line-ending": {"entry": "mixed-line-ending", "types": ["text"]},
        "trailing-whitespace": {"entry": "trailing-whitespace-fixer", "types": ["text"]},
    },
    RUFF_PRE_COMMIT: {
        "ruff-check": {"entry": "ruff check --force-exclude", "types_or": ["python", "pyi", "jupyter"]},
        "ruff-format": {"entry": "ruff format --force-exclude", "types_or": ["python", "pyi", "jupyter"]},
    },
}
CONFIG_KEYS = ("args", "exclude", "files", "types", "types_or", "exclude_types", "stages")


def remote_revs(config: dict) -> dict[str, str]:
    """``{repo url: rev}`` of every remote hook repository in a loaded config."""
    return {repo["repo"]: repo["rev"] for repo in config["repos"] if repo["repo"] not in ("local", "meta")}


def offline_config(config: dict) -> dict:
    """The same config with every known remote hook run from this environment's tools."""
    hooks = []
    for repo in config["repos"]:
        if repo["repo"] in ("local", "meta"):
            raise ValueError(f"{repo['repo']} hooks are not handled here; extend offline_config")
        manifest = MANIFESTS.get(repo["repo"])
        if manifest is None:
            raise KeyError(f"no manifest for {repo['repo']}; add its hooks to MANIFESTS")
        for hook in repo["hooks"]:
            if hook["id"] not in manifest:
                raise KeyError(f"no manifest entry for hook {hook['id']!r} of {repo['repo']}; add it to MANIFESTS")
            known = dict(manifest[hook["id"]])
            entry = known.pop("entry")
            hooks.append(
                {
                    "id": hook["id"],
                    "name": hook["id"],
                    "language": "system",
                    "entry": str(BIN / entry.split()[0]) + "".join(f" {word}" for word in entry.split()[1:]),
                    **known,
                    **{key: hook[key] for key in CONFIG_KEYS if key in hook},
                }
            )
    offline = {key: value for key, value in config.items() if key != "repos"}
    offline["repos"] = [{"repo": "local", "hooks": hooks}]
    return offline


def run_hooks(root: Path, config_path: Path, scratch: Path) -> subprocess.CompletedProcess:
    """``pre-commit run --all-files`` on ``root`` (made a git repository if needed) with the offline config."""
    if not (root / ".git").exists():
        git(root, "init", "--quiet")
    git(root, "add", "--all")  # pre-commit --all-files selects the files git knows
    offline = scratch / "offline-pre-commit-config.yaml"
    offline.write_text(yaml.safe_dump(offline_config(yaml.safe_load(config_path.read_text(encoding="utf-8")))))
    return subprocess.run(
        [
            str(BIN / "pre-commit"),
            "run",
            "--all-files",
            "--show-diff-on-failure",
            "--color",
            "never",
            "-c",
            str(offline),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **git_env(),
            "PRE_COMMIT_HOME": str(scratch / "pre-commit-home"),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
    )
