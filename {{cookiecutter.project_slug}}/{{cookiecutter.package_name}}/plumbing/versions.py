"""Client, scheduler and workers must agree on the packages that serialize work.

A worker with another dask, distributed, tornado, cloudpickle or msgpack, or another
Python minor version, fails in ways that are hard to trace (pickling errors, hung
tasks), so a run stops at connection time with a message that names the culprit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MUST_MATCH = ("python", "dask", "distributed", "tornado", "cloudpickle", "msgpack")


class VersionMismatchError(RuntimeError):
    """The cluster runs other versions of packages that must match this machine's."""


def _comparable(package: str, version: str | None) -> str | None:
    if version is None or package != "python":
        return version
    return ".".join(version.split(".")[:2])  # Coiled matches Python by minor version


def find_mismatches(versions: Mapping[str, Any]) -> list[str]:
    """Describe each must-match package whose version differs from the client's.

    ``versions`` has the shape returned by ``distributed.Client.get_versions()``.
    """
    client = versions["client"]["packages"]
    others = {"scheduler": versions["scheduler"]["packages"]}
    others.update({f"worker {addr}": info["packages"] for addr, info in versions.get("workers", {}).items()})
    problems = []
    for package in MUST_MATCH:
        expected = _comparable(package, client.get(package))
        for where, packages in others.items():
            found = _comparable(package, packages.get(package))
            if found != expected:
                problems.append(f"{package}: this machine has {expected}, {where} has {found}")
    return problems


def check_cluster_versions(client: Any) -> None:
    """Raise VersionMismatchError if the connected cluster cannot safely run this code."""
    problems = find_mismatches(client.get_versions())
    if problems:
        raise VersionMismatchError(
            "the cluster's packages do not match this environment ("
            + "; ".join(problems)
            + "); rebuild the environment from the pins and run `doctor` before retrying"
        )
