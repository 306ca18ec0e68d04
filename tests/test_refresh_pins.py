"""The offline parts of tools/refresh_pins.py: reading pip freeze and rewriting the pin table.

A real refresh needs the network and minutes per Python; it is a maintainer's command
(``make refresh-pins``), never part of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bakery import CONTEXT, TEMPLATE_ROOT
from pins import TEMPLATE_GROUPS
from refresh_pins import (
    CONSTRAINTS,
    parse_freeze,
    pinned_names,
    pins_from_freeze,
    requirement_lines,
    rewrite_pins,
)

FREEZE = """\
# a comment pip does not write, but a pasted file may hold
-e git+https://example.invalid/repo.git@0123abc#egg=editable_thing
PyYAML==6.0.3
pre_commit==4.3.0
Jinja2==3.1.6
dask==2024.8.0
distributed==2024.8.0
local-wheel @ file:///tmp/local_wheel-1.0-py3-none-any.whl
ruamel.yaml==0.18.6
"""


def test_freeze_lines_become_canonical_names_and_versions() -> None:
    assert parse_freeze(FREEZE) == {
        "pyyaml": "6.0.3",
        "pre-commit": "4.3.0",
        "jinja2": "3.1.6",
        "dask": "2024.8.0",
        "distributed": "2024.8.0",
        "ruamel-yaml": "0.18.6",
    }


def test_pins_keep_the_tables_spelling_and_order() -> None:
    frozen = parse_freeze(FREEZE)
    assert pins_from_freeze(frozen, ["distributed", "pre-commit", "dask", "PyYAML"], "3.9") == {
        "distributed": "2024.8.0",
        "pre-commit": "4.3.0",
        "dask": "2024.8.0",
        "PyYAML": "6.0.3",
    }


def test_a_name_pip_did_not_install_stops_the_refresh() -> None:
    with pytest.raises(SystemExit, match=r"python 3\.10: pip did not install coiled, ruff; nothing was written"):
        pins_from_freeze(parse_freeze(FREEZE), ["dask", "coiled", "ruff"], "3.10")


def test_dask_and_distributed_at_two_versions_stop_the_refresh() -> None:
    frozen = {**parse_freeze(FREEZE), "distributed": "2024.9.0"}
    with pytest.raises(SystemExit, match="dask 2024.8.0 and distributed 2024.9.0 differ"):
        pins_from_freeze(frozen, ["dask", "distributed"], "3.9")


def test_the_template_environments_freeze_gives_back_its_pins() -> None:
    """This environment was installed from the pin table, so its real ``pip freeze`` must read back as it."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    groups = {group: names for group, names in CONTEXT["_requirements"].items() if group in TEMPLATE_GROUPS}
    installed = {**CONTEXT, "_requirements": groups}
    pins = pins_from_freeze(parse_freeze(frozen.stdout), pinned_names(installed), python)
    expected = {name: version for name, version in CONTEXT["_pins"][python].items() if name in pins}
    assert pins == expected and list(pins) == list(expected)
    assert {"s3fs", "moto"} <= set(pins), "the template's environment lacks what the s3:// tests need"


def test_pip_is_asked_for_every_name_with_prefect_1s_constraints() -> None:
    lines = requirement_lines(CONTEXT)
    assert {"prefect==1.4.1", "marshmallow<4", "pendulum<3", "dask", "distributed", "coiled"} <= set(lines)
    assert len(lines) == len(pinned_names(CONTEXT)) == len(CONTEXT["_pins"]["3.11"])
    assert set(CONSTRAINTS) <= set(pinned_names(CONTEXT))


def test_rewriting_changes_only_the_refreshed_pins() -> None:
    text = (TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8")
    assert rewrite_pins(text, {}) == text  # a no-op rewrite is byte-identical
    fresh = {**CONTEXT["_pins"]["3.10"], "pandas": "9.9.9", "ruff": "0.99.0"}
    rewritten = json.loads(rewrite_pins(text, {"3.10": fresh}))
    assert rewritten["_pins"]["3.10"] == fresh
    assert list(rewritten["_pins"]) == list(CONTEXT["_pins"])
    assert list(rewritten) == list(CONTEXT)
    assert {**rewritten, "_pins": None} == {**CONTEXT, "_pins": None}
    assert {k: v for k, v in rewritten["_pins"].items() if k != "3.10"} == {
        k: v for k, v in CONTEXT["_pins"].items() if k != "3.10"
    }
