"""``python -m <package> doctor``: check this environment before going to Coiled.

Coiled's package sync recreates this environment on the cloud workers, so whatever is
wrong here is wrong there too, only found later and at a price. The doctor compares the
running Python and the installed packages with the project's pins, runs ``pip check``
the way package sync does, and lists what package sync would ship, read with the coiled
client's own offline scan (no account or network needed). That scan reads a conda
environment's conda-meta records as well as pip's metadata, so what conda installed
(from environment.yml) is compared with the pins just like what pip installed. Problems
make it exit 1; notes are for information.
"""

from __future__ import annotations

import asyncio
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..settings import DISTRIBUTION, PYTHON_VERSION
from .backends import MUST_MATCH
from .coiled_api import LOGIN, has_token
from .plan import PROJECT_ROOT, resolve_backend, setting
from .rules import SETTINGS, SettingError

PACKAGE_DIR = Path(__file__).resolve().parents[1]

OK, NOTE, PROBLEM = "ok", "note", "problem"
# The fsspec libraries behind object-storage URLs; workers need the same ones as this machine.
STORAGE_LIBRARIES = {"s3fs": "s3://", "gcsfs": "gs://", "adlfs": "abfs://"}


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: str
    message: str


@dataclass(frozen=True)
class Installed:
    """An installed distribution as package sync sees it: its version and the installer that put it there."""

    version: str
    source: str


@dataclass(frozen=True)
class Pin:
    """A pinned requirement; ``extra`` is None for a runtime dependency."""

    requirement: Requirement
    extra: str | None = None


def check_python(running: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)) -> list[Finding]:
    """The pins were resolved for one Python minor version, and Coiled gives the workers this machine's."""
    version = "{}.{}".format(*running)
    if version != PYTHON_VERSION:
        return [
            Finding(
                PROBLEM,
                f"python {version} is running, but the project is pinned for Python {PYTHON_VERSION}; "
                f"create the environment with python{PYTHON_VERSION}",
            )
        ]
    return [Finding(OK, f"python {platform.python_version()} matches the project's Python {PYTHON_VERSION}")]


def project_pins() -> tuple[list[Pin], list[Finding]]:
    """The pins of the installed project, read from its metadata (pyproject.toml rendered at install).

    When the project is only on ``sys.path`` (``PYTHONPATH``, no install), there is no
    metadata: the pins then come from the pyproject.toml beside the package, and the
    report says so, because package sync will upload the folder instead of a wheel.
    """
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _source_tree_pins()
    extras = distribution.metadata.get_all("Provides-Extra") or []
    pins = [pin for text in distribution.requires or [] if (pin := _metadata_pin(text, extras))]
    return pins, [Finding(OK, f"pins read from the installed {DISTRIBUTION} {distribution.version}")]


def _metadata_pin(text: str, extras: Sequence[str]) -> Pin | None:
    """Turn a ``Requires-Dist`` line into a pin; None when its marker excludes this machine."""
    requirement = Requirement(text)
    if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
        return Pin(requirement)
    return next((Pin(requirement, extra) for extra in extras if requirement.marker.evaluate({"extra": extra})), None)


def _source_tree_pins() -> tuple[list[Pin], list[Finding]]:
    pyproject = PROJECT_ROOT / "pyproject.toml"
    not_installed = f"{DISTRIBUTION} is not installed (imported from {PACKAGE_DIR}); `pip install -e .` is the setup"
    try:
        import tomllib
    except ImportError:  # Python < 3.11: pytest brings tomli into dev environments
        try:
            import tomli as tomllib
        except ImportError:
            return [], [Finding(PROBLEM, f"{not_installed}, and no TOML parser can read {pyproject} for the pins")]
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, ValueError) as error:
        return [], [Finding(PROBLEM, f"{not_installed}, and {pyproject} gives no pins: {error}")]
    groups = {None: project.get("dependencies", []), **project.get("optional-dependencies", {})}
    pins = [
        Pin(requirement, extra)
        for extra, texts in groups.items()
        for requirement in map(Requirement, texts)
        if requirement.marker is None or requirement.marker.evaluate({"extra": extra or ""})
    ]
    return pins, [Finding(NOTE, f"{not_installed}; pins read from {pyproject}")]


def installed_from_scan(packages: Iterable[Mapping[str, Any]]) -> dict[str, Installed]:
    """{canonical name: Installed} from ``coiled.scan.scan_prefix()``: conda-meta records and pip metadata alike.

    For a name both conda and pip installed, the scan keeps the one Python imports. Conda
    packages without Python metadata are left out: they are programs and libraries that
    can share a name with a PyPI distribution without being it (conda-forge's ``graphviz``
    is Graphviz itself, PyPI's ``graphviz`` the Python binding the project pins).
    """
    return {
        canonicalize_name(str(package["name"])): Installed(str(package["version"]), str(package["source"]))
        for package in packages
        if package.get("version") and (package.get("source") != "conda" or _has_python_metadata(package))
    }


def _has_python_metadata(package: Mapping[str, Any]) -> bool:
    """The scan points a conda package with Python metadata at its dist-info folder, any other at one of its files."""
    return Path(str(package.get("path") or "")).suffix in (".dist-info", ".egg-info")


def installed_from_metadata() -> dict[str, Installed]:
    """The same read from importlib.metadata, for when the scan fails; the first of a name on sys.path wins."""
    installed: dict[str, Installed] = {}
    for distribution in metadata.distributions():
        name, version = distribution.metadata.get("Name"), distribution.metadata.get("Version")
        if name and version:
            installer = (distribution.read_text("INSTALLER") or "").strip() or "pip"
            installed.setdefault(canonicalize_name(name), Installed(version, installer))
    return installed


def check_pins(pins: Iterable[Pin], installed: Mapping[str, Installed]) -> list[Finding]:
    """Every runtime pin installed at its version, by conda or pip; extras may be absent, but not at another version."""
    problems: list[Finding] = []
    absent_extras: dict[str, list[str]] = {}
    matched: list[str] = []
    by_conda: list[str] = []
    for pin in pins:
        name, wanted = pin.requirement.name, str(pin.requirement.specifier)
        found = installed.get(canonicalize_name(name))
        if found is None and pin.extra is not None:
            absent_extras.setdefault(pin.extra, []).append(name)
        elif found is None:
            problems.append(Finding(PROBLEM, f"{name} is not installed; the project pins {name}{wanted}"))
        elif not pin.requirement.specifier.contains(found.version, prereleases=True):
            problems.append(
                Finding(
                    PROBLEM, f"{name} {found.version} is installed by {found.source}; the project pins {name}{wanted}"
                )
            )
        else:
            matched.append(name)
            if found.source == "conda":
                by_conda.append(name)
    conda_note = f", {len(by_conda)} of them installed by conda ({', '.join(by_conda)})" if by_conda else ""
    findings = problems or [Finding(OK, f"{len(matched)} installed packages match their pins{conda_note}")]
    for extra, names in absent_extras.items():
        findings.append(
            Finding(NOTE, f"extra '{extra}' is not installed ({', '.join(names)}): pip install -e \".[{extra}]\"")
        )
    return findings


def check_storage(installed: Mapping[str, Installed]) -> list[Finding]:
    """Which object stores flows can read and write here (and, through package sync, on Coiled)."""
    present = [f"{name} ({url})" for name, url in STORAGE_LIBRARIES.items() if canonicalize_name(name) in installed]
    reach = ", ".join(present) if present else "none installed: local files only"
    return [Finding(NOTE, f"object storage: {reach}")]


def check_must_match(versions: Mapping[str, str | None]) -> list[Finding]:
    """Package sync matches these exactly on every machine; dask and distributed are released together."""
    findings = [
        Finding(PROBLEM, f"{name} is not installed; client, scheduler and workers must run the same {name}")
        for name, version in versions.items()
        if version is None
    ]
    dask, distributed = versions.get("dask"), versions.get("distributed")
    if dask and distributed and dask != distributed:
        findings.append(
            Finding(PROBLEM, f"dask {dask} and distributed {distributed} differ; install one version of both")
        )
    return findings or [Finding(OK, f"dask and distributed are both {dask}")]


def check_pip(faulty: Mapping[str, Sequence[str]]) -> list[Finding]:
    """``faulty`` as returned by coiled's ``check_pip_happy``: package name -> pip check lines."""
    if not faulty:
        return [Finding(OK, "pip check finds no broken requirement")]
    return [
        Finding(PROBLEM, f"pip check: {line.rstrip('.')}; package sync would give the workers the same broken set")
        for lines in faulty.values()
        for line in lines
    ]


def check_package_sync(packages: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """What package sync ships, from ``coiled.scan.scan_prefix()``; the project's code must go exactly once."""
    from coiled.software_utils import partition_local_packages, partition_local_python_code_packages

    rest, local_code = partition_local_python_code_packages(list(packages))
    _, built = partition_local_packages(rest)
    project: list[str] = []
    findings: list[Finding] = []
    for package in local_code + built:
        if _ships_project(package):
            project.append(_describe(package))
        else:
            findings.append(Finding(NOTE, f"package sync {_describe(package)}"))
    if len(project) == 1:
        findings.insert(0, Finding(OK, f"package sync ships this project's code once: it {project[0]}"))
    elif not project:
        findings.insert(
            0, Finding(PROBLEM, f"package sync would not ship this project's code ({PACKAGE_DIR}); pip install -e .")
        )
    else:
        findings.insert(
            0,
            Finding(
                PROBLEM,
                f"package sync would ship this project's code {len(project)} times: it {'; it '.join(project)}. "
                "Keep the editable install and take the other folders off sys.path (PYTHONPATH, .pth files, cwd)",
            ),
        )
    unversioned = sorted(str(package["name"]) for package in packages if not package.get("version"))
    if unversioned:
        findings.append(
            Finding(
                PROBLEM, f"no version recorded for {', '.join(unversioned)}: package sync cannot pin it on the workers"
            )
        )
    return findings


def _describe(package: Mapping[str, Any]) -> str:
    if str(package["name"]).startswith("coiled_local_"):
        return f"uploads {package['path']} as {package['name']} (every .py file below it)"
    return f"builds a wheel of {package['name']} from {package['wheel_target']}"


def _ships_project(package: Mapping[str, Any]) -> bool:
    """True for the project's own distribution and for any folder that holds the package."""
    if canonicalize_name(str(package["name"])) == canonicalize_name(DISTRIBUTION):
        return True
    if not package.get("path"):
        return False
    folder = Path(package["path"]).resolve()
    return (
        folder == PACKAGE_DIR or folder in PACKAGE_DIR.parents or (folder / PACKAGE_DIR.name / "__init__.py").is_file()
    )


async def _scan() -> tuple[list[Any], Mapping[str, Sequence[str]]]:
    from coiled.scan import scan_prefix
    from coiled.software_utils import check_pip_happy

    packages, faulty = await asyncio.gather(scan_prefix(), check_pip_happy())
    return packages, faulty


def check_coiled_token() -> list[Finding]:
    """A run on Coiled without a token stops at once (or, at a terminal, opens Coiled's browser login).

    A problem when runs go to Coiled unless told otherwise (``<PREFIX>_CLUSTER``, then
    settings.py); a note for a project that computes locally by default, so the doctor
    stays useful to someone who never goes to Coiled.
    """
    try:
        backend = resolve_backend()
    except SettingError:  # check_settings names it
        backend = None
    if has_token():
        return [Finding(OK, "a Coiled token is configured (coiled login or DASK_COILED__TOKEN)")]
    if backend == "coiled":
        return [Finding(PROBLEM, f"no Coiled token, and runs go to Coiled by default: {LOGIN}")]
    return [Finding(NOTE, f"no Coiled token; runs with --cluster coiled need one: {LOGIN}")]


def check_settings() -> list[Finding]:
    """Every setting a run would refuse, each on its line: a refused one stops every run with exit 2."""
    problems = []
    for name in SETTINGS:
        try:
            setting(name)
        except SettingError as error:
            problems.append(Finding(PROBLEM, str(error)))
    return problems or [Finding(OK, f"all {len(SETTINGS)} settings are valid (settings.py and environment)")]


def diagnose() -> list[Finding]:
    """Every check, in the order a reader fixes them."""
    pins, findings = project_pins()
    packages, scanned = scan()
    installed = installed_from_scan(packages) if packages is not None else installed_from_metadata()
    versions = {
        name: found.version if (found := installed.get(canonicalize_name(name))) else None
        for name in MUST_MATCH
        if name != "python"
    }
    pinned = check_pins(pins, installed)
    return (
        check_python()
        + findings
        + pinned
        + check_storage(installed)
        + check_must_match(versions)
        + scanned
        + check_settings()
        + check_coiled_token()
    )


def scan() -> tuple[list[Any] | None, list[Finding]]:
    """coiled's offline scan and what it says about ``pip check`` and package sync; no packages when it fails."""
    try:
        packages, faulty = asyncio.run(_scan())
    except ImportError as error:
        return None, [Finding(PROBLEM, f"the coiled client cannot be imported ({error}); install the pins")]
    except Exception as error:  # the scan stops at the first unreadable package, as package sync would
        return None, [scan_failure(error)]
    return packages, check_pip(faulty) + check_package_sync(packages)


def scan_failure(error: Exception) -> Finding:
    """Name the likely culprits: distributions whose metadata has no version (the scan reads every one)."""
    culprits = sorted(
        str(dist.metadata.get("Name")) for dist in metadata.distributions() if not dist.metadata.get("Version")
    )
    hint = f"; no version in the metadata of {', '.join(culprits)}" if culprits else ""
    return Finding(
        PROBLEM,
        f"coiled's environment scan fails ({type(error).__name__}: {error}), as package sync would when a "
        f"cluster starts{hint}",
    )


def main() -> int:
    """Print the report; exit 1 if anything would break on Coiled."""
    findings = diagnose()
    for finding in findings:
        print(f"{finding.level:<8} {finding.message}")
    problems = sum(finding.level == PROBLEM for finding in findings)
    if problems:
        print(f"doctor: {problems} problem{'s' if problems > 1 else ''} to fix before running on Coiled")
        return 1
    print("doctor: no problems; this environment is ready for Coiled's package sync")
    return 0
