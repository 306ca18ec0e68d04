"""Tidy the generated project and print the next steps.

Safe to run again (cruft re-runs it on update): it only removes folders that the
chosen options left empty, and never touches git, the network or any environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821


def remove_empty_folders(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def next_steps(answers: dict) -> str:
    slug, package = answers["project_slug"], answers["package_name"]
    flow = "inc-double-add-sum" if answers["executor"] == "DaskExecutor" else "timeseries"
    return f"""
Created {slug}. Next steps:

  cd {slug}
  conda env create -f environment.yml && conda activate {slug}
      (or: python{answers["python_version"]} -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]")
  python -m {package} run {flow} --cluster local
  pytest
  pre-commit install

To run on Coiled: coiled login, then python -m {package} run {flow} --cluster coiled
"""


def main() -> int:
    remove_empty_folders(Path.cwd())
    print(next_steps(ANSWERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
