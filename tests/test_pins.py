"""One pin table, rendered twice: environment.yml and pyproject.toml must agree exactly."""

from __future__ import annotations

import re
import sys

import pytest
import yaml
from bakery import CHOICES, CONTEXT, bake

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CONDA_NAMES = CONTEXT["_requirements"]["conda_names"]


def conda_pins(text: str) -> dict[str, str]:
    pins = {}
    for item in yaml.safe_load(text)["dependencies"]:
        if isinstance(item, str) and "=" in item:
            name, version = item.split("=", 1)
            pins[name] = version
    return pins


def pip_pins(text: str) -> dict[str, str]:
    project = tomllib.loads(text)["project"]
    requirements = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^,;\s]+)", requirement)
        assert match, f"not an exact pin: {requirement}"
        pins[match[1]] = match[2]
    return pins


@pytest.mark.parametrize("python", CHOICES["python_version"])
def test_environment_and_pyproject_pin_the_same_versions(python: str, tmp_path) -> None:
    project = bake(tmp_path, python_version=python)
    conda = conda_pins((project / "environment.yml").read_text(encoding="utf-8"))
    pip = pip_pins((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert conda.pop("python") == python
    assert {CONDA_NAMES.get(name, name): version for name, version in pip.items()} == conda
    assert pip == CONTEXT["_pins"][python]


@pytest.mark.parametrize("python", CHOICES["python_version"])
def test_pin_sets_follow_package_sync_rules(python: str) -> None:
    pins = CONTEXT["_pins"][python]
    assert pins["dask"] == pins["distributed"]
    for must in ("tornado", "cloudpickle", "msgpack", "marshmallow", "pendulum"):
        assert must in pins
    assert pins["prefect"] == "1.4.1"
    assert int(pins["marshmallow"].split(".")[0]) < 4 and int(pins["pendulum"].split(".")[0]) < 3
