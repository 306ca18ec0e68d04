"""One pin table: pyproject.toml pins exactly ``_pins`` for the bake's Python, by package sync's rules.

environment.yml installs the project through pip with the same pins (tests/test_conda_forge.py).
"""

from __future__ import annotations

import re
import sys

import pytest
from bakery import CHOICES, CONTEXT, bake

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def pip_pins(text: str) -> dict[str, str]:
    project = tomllib.loads(text)["project"]
    requirements = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?==([^,;\s]+)", requirement)
        assert match, f"not an exact pin: {requirement}"
        pins[match[1]] = match[2]
    return pins


@pytest.mark.parametrize("python", CHOICES["python_version"])
def test_pyproject_pins_the_tables_versions(python: str, tmp_path) -> None:
    project = bake(tmp_path, python_version=python)
    assert pip_pins((project / "pyproject.toml").read_text(encoding="utf-8")) == CONTEXT["_pins"][python]


@pytest.mark.parametrize("python", CHOICES["python_version"])
def test_pin_sets_follow_package_sync_rules(python: str) -> None:
    pins = CONTEXT["_pins"][python]
    assert pins["dask"] == pins["distributed"]
    for must in ("tornado", "cloudpickle", "msgpack", "marshmallow", "pendulum"):
        assert must in pins
    assert pins["prefect"] == "1.4.1"
    assert int(pins["marshmallow"].split(".")[0]) < 4 and int(pins["pendulum"].split(".")[0]) < 3
