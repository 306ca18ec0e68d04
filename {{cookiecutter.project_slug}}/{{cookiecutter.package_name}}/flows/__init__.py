"""The project's flows, by name; modules load on demand to keep the CLI fast."""

from __future__ import annotations

import importlib
from types import ModuleType

FLOWS = {
{%- if cookiecutter.executor != "DaskExecutor" %}
    "timeseries": (
        "{{ cookiecutter.package_name }}.flows.timeseries",
        "LocalExecutor: load a dask timeseries on the cluster, summarize it, log the table",
    ),
{%- endif %}
{%- if cookiecutter.executor != "LocalExecutor" %}
    "inc-double-add-sum": (
        "{{ cookiecutter.package_name }}.flows.inc_double_add_sum",
        "DaskExecutor: map inc and double over a range, add them pairwise, sum the results",
    ),
{%- endif %}
}


def load_flow_module(name: str) -> ModuleType:
    """Import the module that defines flow ``name``."""
    if name not in FLOWS:
        raise KeyError(f"unknown flow {name!r}; choose one of {', '.join(FLOWS)}")
    return importlib.import_module(FLOWS[name][0])
