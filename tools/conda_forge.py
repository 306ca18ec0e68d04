"""The conda-forge table (``_conda_forge`` in cookiecutter.json) and the two checks that keep it true.

A generated environment.yml takes only the table's packages from conda-forge; pip installs
everything else from PyPI at the exact pins, because conda-forge lacks many of those
versions (prefect 1.4.1 was never built there). Each entry lists the versions conda-forge
may supply (or ``"any"`` for an unpinned package) and says where environment.yml takes
the version from: ``"python_version"`` (the bake's Python), ``"_pins"`` (the package's
PyPI pin, the same distribution) or nothing (unpinned).

- ``drift``, offline: every version an environment.yml asks conda-forge for is one the
  table lists, so a pin cannot move to a version nobody checked on conda-forge.
- ``check_channel``, online: conda-forge's published repodata has a build of every listed
  version for every supported Python on linux-64, osx-64 and osx-arm64. When the channel
  cannot be read, ``report`` says NOT CHECKED and exits non-zero: never a silent pass.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from urllib.request import Request, urlopen

from packaging.specifiers import InvalidSpecifier, SpecifierSet

CHANNEL = "https://conda.anaconda.org/conda-forge"
SUBDIRS = ("linux-64", "osx-64", "osx-arm64")
ANY = "any"
TIMEOUT_SECONDS = 60
# Python patch releases tried against a build's `python` requirement (">=3.9,<3.10.0a0", "3.11.*", ...).
PATCHES = range(30)


class NotChecked(Exception):
    """conda-forge's repodata could not be read: the table is neither confirmed nor refuted."""


def requested(context: Mapping, python: str) -> dict[str, str | None]:
    """{name: version} that environment.yml asks conda-forge for in a bake for ``python``; None is unpinned."""
    pins = context["_pins"][python]
    versions: dict[str, str | None] = {}
    for name, entry in context["_conda_forge"].items():
        source = entry.get("version_from")
        versions[name] = python if source == "python_version" else pins.get(name) if source == "_pins" else None
    return versions


def drift(context: Mapping) -> list[str]:
    """One line per version an environment.yml would ask conda-forge for that the table does not list."""
    problems = []
    for python in context["python_version"]:
        for name, version in requested(context, python).items():
            allowed = context["_conda_forge"][name]["versions"]
            if version is None and allowed != ANY:
                problems.append(
                    f"python {python}: environment.yml would ask conda-forge for any {name}, but _conda_forge "
                    f"allows only {', '.join(allowed)}; give the entry a version_from"
                )
            elif version is not None and (allowed == ANY or version not in allowed):
                problems.append(
                    f"python {python}: environment.yml would ask conda-forge for {name}={version}, but _conda_forge "
                    f"lists {'no version' if allowed == ANY else ', '.join(allowed)}; check conda-forge and update the table"
                )
    return problems


def admits(dependency: str, python: str) -> bool:
    """Whether a repodata ``depends`` entry such as ``python >=3.9,<3.10.0a0`` allows some ``python``.X release."""
    parts = dependency.split()
    if len(parts) < 2:
        return True
    return any(_admits_all(alternative, python) for alternative in parts[1].split("|"))


def _admits_all(clauses: str, python: str) -> bool:
    try:
        spec = SpecifierSet(",".join(c if c[:1] in "<>=!~" else f"=={c}" for c in clauses.split(",")))
    except InvalidSpecifier:
        return False
    return any(spec.contains(f"{python}.{patch}", prereleases=True) for patch in PATCHES)


def provides(record: Mapping, name: str, version: str | None, python: str) -> bool:
    """Whether a repodata record is ``name`` at ``version`` (conda's ``name=version``) and installs with ``python``."""
    found = str(record.get("version", ""))
    return (
        record.get("name") == name
        and (version is None or found == version or found.startswith(f"{version}."))
        and all(admits(dep, python) for dep in record.get("depends", []) if dep.split()[:1] == ["python"])
    )


def read_repodata(url: str, names: Iterable[str]) -> list[dict]:
    """The records of ``names`` in one repodata.json; other records are dropped while parsing (the file is large)."""
    wanted = set(names)

    def keep(pairs: list) -> dict | None:
        item = dict(pairs)
        return None if "build" in item and "version" in item and item.get("name") not in wanted else item

    try:
        with urlopen(Request(url, headers={"Accept-Encoding": "gzip"}), timeout=TIMEOUT_SECONDS) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
        repodata = json.loads(body, object_pairs_hook=keep)
    except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, bad gzip; bad JSON
        raise NotChecked(f"cannot read {url} ({getattr(error, 'reason', None) or error})") from error
    if not isinstance(repodata, dict):
        raise NotChecked(f"{url} is not a repodata.json")
    return [record for key in ("packages", "packages.conda") for record in (repodata.get(key) or {}).values() if record]


def check_channel(context: Mapping, channel: str = CHANNEL) -> list[str]:
    """``name=version for Python X on subdir`` for every listed version the channel has no build of."""
    table = context["_conda_forge"]
    print(f"conda-forge: reading {channel}/noarch/repodata.json", flush=True)
    noarch = read_repodata(f"{channel}/noarch/repodata.json", table)
    missing = []
    for subdir in SUBDIRS:
        print(f"conda-forge: reading {channel}/{subdir}/repodata.json", flush=True)
        records = read_repodata(f"{channel}/{subdir}/repodata.json", table) + noarch
        for python in context["python_version"]:
            for name, entry in table.items():
                wanted = [python] if entry.get("version_from") == "python_version" else entry["versions"]
                for version in [None] if wanted == ANY else wanted:
                    if not any(provides(record, name, version, python) for record in records):
                        missing.append(f"{name}{'=' + version if version else ''} for Python {python} on {subdir}")
    return missing


def report(context: Mapping, channel: str = CHANNEL) -> int:
    """Print the channel check; 0 when conda-forge has everything, 1 when it lacks something, 2 when not checked."""
    try:
        missing = check_channel(context, channel)
    except NotChecked as error:
        print(f"conda-forge: NOT CHECKED: {error}; _conda_forge was not compared with conda-forge")
        return 2
    for item in missing:
        print(f"conda-forge: MISSING {item}")
    if missing:
        print(
            f"conda-forge: {len(missing)} listed builds are not on {channel}; correct _conda_forge in cookiecutter.json"
        )
        return 1
    print(
        f"conda-forge: checked: {channel} has every version _conda_forge lists for Python "
        f"{', '.join(context['python_version'])} on {', '.join(SUBDIRS)}"
    )
    return 0
