"""Tidy the generated project and print the exact next steps.

Safe to run again (cruft re-runs it on update): it only removes folders that the chosen
options left empty, never looks inside ``.git``, and never touches git, the network or
any environment; the user runs the printed commands when they choose to.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821

KEEP = {".git"}


def remove_empty_folders(root: Path) -> None:
    """Remove every folder below ``root`` that holds no file at any depth."""
    folders = [path for path in root.rglob("*") if path.is_dir() and not KEEP & set(path.relative_to(root).parts)]
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def next_steps(answers: dict, project_dir: Path) -> str:
    slug, package, python = answers["project_slug"], answers["package_name"], answers["python_version"]
    names = answers["_example_flows"][answers["executor"]]
    return "\n".join(
        [
            f"Created {slug}. Next steps:",
            "",
            f"  cd {shlex.quote(str(project_dir))}",
            f"  conda env create -f environment.yml && conda activate {slug}",
            f'  # or, without conda: python{python} -m venv .venv && . .venv/bin/activate && pip install -e ".[dev,diagram]"',
            "  pytest",
            f"  python -m {package} flows",
            *(f"  python -m {package} run {flow} --cluster local" for flow in names),
            "  git init && pre-commit install",
            f"  coiled login && python -m {package} run {names[0]} --cluster coiled",
        ]
    )


def main() -> int:
    project_dir = Path.cwd()
    remove_empty_folders(project_dir)
    print(next_steps(ANSWERS, project_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
