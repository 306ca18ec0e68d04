"""Refresh the pin table: the newest working set of every pinned package, for each supported Python.

``python tools/refresh_pins.py [--python 3.11 ...] [--dry-run]`` (or ``make refresh-pins``,
which then runs ``make test``) creates a fresh virtual environment per Python, lets pip
pick the newest versions of every name in ``_requirements`` under the few constraints
Prefect 1 needs, requires a clean ``pip check``, and rewrites ``_pins`` in
cookiecutter.json, leaving every other key, and the key order, as it was. Nothing is
written unless every requested Python resolved, nor when a new pin would make an
environment.yml ask conda-forge for a version the conda-forge table (``_conda_forge``)
does not list. The test suite then proves each new set: it installs it in a fresh
environment per Python and runs the generated project's tests.

Last, the conda-forge table is checked against conda-forge's published repodata (also on
its own: ``--conda-forge-only``; ``--conda-forge-url`` or ``CONDA_FORGE_URL`` points at a
mirror). The exit status is 0 only when that check ran and passed: 1 when conda-forge
lacks a listed build, 2 with a NOT CHECKED line when conda-forge could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import conda_forge
from pins import COOKIECUTTER_JSON, bare, load_context
from pythons import find_python

# Why each bound exists; everything else floats to the newest release that installs.
CONSTRAINTS = {
    "prefect": "==1.4.1",  # the template is for Prefect 1, and 1.4.1 is its last release
    "marshmallow": "<4",  # marshmallow 4 breaks every Prefect 1 serialization path
    "pendulum": "<3",  # pendulum 3 breaks Prefect 1's CronSchedule and CronClock
}
# dask and distributed must be one version; distributed pins its dask exactly, so pip
# resolves them together, and pins_from_freeze refuses a set where they differ.


def canonical(name: str) -> str:
    """PEP 503 name: pip freeze prints ``PyYAML`` and ``pre_commit`` where the table says ``pre-commit``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_of(context: Mapping) -> list[str]:
    """Every requirement of every group (extras such as ``moto[server]`` included), in the table's order."""
    return [name for names in context["_requirements"].values() for name in names]


def pinned_names(context: Mapping) -> list[str]:
    """Every name the table pins, in the table's order."""
    return [bare(name) for name in requirements_of(context)]


def requirement_lines(context: Mapping) -> list[str]:
    """What pip is asked to install: every requirement, unversioned but for the constraints."""
    return [name + CONSTRAINTS.get(bare(name), "") for name in requirements_of(context)]


def parse_freeze(text: str) -> dict[str, str]:
    """``pip freeze`` output as {canonical name: version}; editable and direct-URL lines are skipped."""
    versions = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line.strip())
        if match:
            versions[canonical(match[1])] = match[2]
    return versions


def pins_from_freeze(frozen: Mapping[str, str], names: Iterable[str], python: str) -> dict[str, str]:
    """The versions of ``names`` in a resolved environment, in the table's order; refuses an unusable set."""
    names = list(names)
    missing = [name for name in names if canonical(name) not in frozen]
    if missing:
        raise SystemExit(f"python {python}: pip did not install {', '.join(missing)}; nothing was written")
    pins = {name: frozen[canonical(name)] for name in names}
    if pins.get("dask") != pins.get("distributed"):
        raise SystemExit(
            f"python {python}: dask {pins.get('dask')} and distributed {pins.get('distributed')} differ; "
            "package sync needs one version of both; nothing was written"
        )
    return pins


def rewrite_pins(text: str, new_pins: Mapping[str, Mapping[str, str]]) -> str:
    """cookiecutter.json ``text`` with ``_pins`` replaced for the Pythons in ``new_pins``, all else kept."""
    context = json.loads(text)
    context["_pins"] = {**context["_pins"], **{python: dict(pins) for python, pins in new_pins.items()}}
    return json.dumps(context, indent=2, ensure_ascii=False) + "\n"


def resolve(python: str, interpreter: str, lines: list[str]) -> dict[str, str]:
    """Install ``lines`` into a fresh venv built with ``interpreter``; returns its ``pip freeze``."""
    with tempfile.TemporaryDirectory(prefix=f"refresh-pins-{python}-") as scratch:
        venv_python = str(Path(scratch) / "bin" / "python")
        for step in (
            [interpreter, "-m", "venv", scratch],
            [venv_python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            [venv_python, "-m", "pip", "install", "--quiet", *lines],
            [venv_python, "-m", "pip", "check"],
        ):
            print(f"python {python}: {' '.join(step[1:])}", flush=True)
            if subprocess.run(step).returncode != 0:
                raise SystemExit(f"python {python}: `{' '.join(step)}` failed; nothing was written")
        frozen = subprocess.run([venv_python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
        return parse_freeze(frozen.stdout)


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return [
        f"{name} {old.get(name, '(new)')} -> {version}" for name, version in new.items() if old.get(name) != version
    ]


def main(argv: list[str] | None = None) -> int:
    context = load_context()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", choices=context["python_version"], help="repeatable; default: all")
    parser.add_argument("--dry-run", action="store_true", help="resolve and show the changes, write nothing")
    parser.add_argument(
        "--conda-forge-only", action="store_true", help="only check _conda_forge against conda-forge's repodata"
    )
    parser.add_argument(
        "--conda-forge-url",
        default=os.environ.get("CONDA_FORGE_URL", conda_forge.CHANNEL),
        help="channel URL holding <subdir>/repodata.json (default: $CONDA_FORGE_URL or %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.conda_forge_only:
        return conda_forge.report(context, args.conda_forge_url)
    pythons = args.python or list(context["python_version"])
    interpreters = {python: find_python(python) for python in pythons}
    absent = [python for python, interpreter in interpreters.items() if interpreter is None]
    if absent:
        raise SystemExit(
            f"python {', '.join(absent)}: no interpreter on PATH or in pyenv; install it, or refresh the others "
            f"with --python; nothing was written"
        )
    new_pins = {}
    for python, interpreter in interpreters.items():
        frozen = resolve(python, str(interpreter), requirement_lines(context))
        new_pins[python] = pins_from_freeze(frozen, pinned_names(context), python)
    for python, pins in new_pins.items():
        changes = describe_changes(context["_pins"].get(python, {}), pins)
        print(f"python {python}: " + ("; ".join(changes) if changes else "no change"))
    drifted = conda_forge.drift({**context, "_pins": {**context["_pins"], **new_pins}})
    if drifted:
        raise SystemExit("\n".join([*drifted, "nothing was written"]))
    if not args.dry_run:
        COOKIECUTTER_JSON.write_text(
            rewrite_pins(COOKIECUTTER_JSON.read_text(encoding="utf-8"), new_pins), encoding="utf-8"
        )
        print(f"wrote {COOKIECUTTER_JSON.name}; now run `make test` to prove every new set")
    return conda_forge.report(context, args.conda_forge_url)


if __name__ == "__main__":
    sys.exit(main())
