"""``python -m {{ cookiecutter.package_name }} doctor`` on this very environment.

The report reads the real environment with the coiled client's offline scan, so these
tests pass whether the project is installed (``pip install -e .``) or only on
``PYTHONPATH``, and fail when this environment drifts from the pins. The clean report
comes from the command a user runs; the broken environments are this process's with one
folder put in front of ``sys.path`` and ``PYTHONPATH``. What conda installs is read by
the same scan from a conda environment's layout (conda-meta records beside the metadata
in site-packages), built in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from coiled.scan import scan_prefix
from packaging.requirements import Requirement

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.doctor import (
    DISTRIBUTION,
    NOTE,
    OK,
    PROBLEM,
    PYTHON_VERSION,
    Finding,
    Installed,
    Pin,
    check_must_match,
    check_pins,
    check_python,
    check_settings,
    check_storage,
    installed_from_metadata,
    installed_from_scan,
    project_pins,
)
from {{ cookiecutter.package_name }}.plumbing.plan import setting
from {{ cookiecutter.package_name }}.plumbing.rules import SETTINGS, SettingError
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import PROJECT_ROOT, project_env
from test_settings import REFUSED

try:
    import tomllib
except ImportError:  # Python < 3.11: pytest depends on tomli there
    import tomli as tomllib

PACKAGE = "{{ cookiecutter.package_name }}"


def doctor_in_this_process(extra_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    """The doctor's exit code, report and error output with ``extra_path`` first on sys.path and PYTHONPATH.

    The doctor's ``pip check`` runs in a subprocess, which finds the folder through PYTHONPATH.
    """
    monkeypatch.syspath_prepend(str(extra_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(extra_path), os.environ.get("PYTHONPATH")])))
    code = main(["doctor"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def doctor_command(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m <package> doctor`` as a user runs it, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, "doctor"],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: the scan and ``pip check`` take seconds
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def is_installed() -> bool:
    try:
        metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_this_environment_has_no_problem_and_ships_the_code_once() -> None:
    done = doctor_command(project_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("doctor: no problems")
    assert not [line for line in done.stdout.splitlines() if line.startswith(PROBLEM)]
    if is_installed():  # the editable install is built into one wheel; the folder itself is not uploaded
        expected = f"ok       package sync ships this project's code once: it builds a wheel of {DISTRIBUTION} from"
        assert "coiled_local_" not in done.stdout
    else:  # only on PYTHONPATH: the folder is uploaded as plain code, once
        expected = f"ok       package sync ships this project's code once: it uploads {PROJECT_ROOT} as coiled_local_"
        assert f"note     {DISTRIBUTION} is not installed" in done.stdout
    assert expected in done.stdout


def test_valid_settings_are_one_ok_line() -> None:
    assert check_settings() == [Finding(OK, f"all {len(SETTINGS)} settings are valid (settings.py and environment)")]


def test_a_refused_setting_is_a_problem_and_exit_1(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", "abc")
    assert main(["doctor"]) == 1
    report = capsys.readouterr().out.splitlines()
    assert [line for line in report if line.startswith(PROBLEM)] == [
        f"problem  {ENV_PREFIX}LOCAL_N_WORKERS: 'abc' is not a whole number from 1 to 64"
    ]
    assert report[-1] == "doctor: 1 problem to fix before running on Coiled"


def test_every_refused_setting_is_named_on_a_line_of_its_own() -> None:
    """Every setting refused at once, as a fresh interpreter reads them: one problem line each, in the
    table's order, with the line a run would stop at; the doctor runs even though the flows cannot be
    imported (a refused retry delay stops their import)."""
    refused = {ENV_PREFIX + key: REFUSED.get(key, "-1") for key in SETTINGS}
    expected = []
    for key in SETTINGS:
        with pytest.raises(SettingError) as error:
            setting(key, refused)
        expected.append(f"problem  {error.value}")
    done = doctor_command(project_env(**refused))
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stdout.splitlines()
    assert [line for line in report if line.startswith(PROBLEM)] == expected, done.stdout
    assert report[-1] == f"doctor: {len(SETTINGS)} problems to fix before running on Coiled"
    assert "Traceback" not in done.stdout + done.stderr


def test_a_second_copy_of_the_package_on_sys_path_is_shipped_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A src layout installed editable puts ``src/`` on sys.path: Coiled then uploads it besides the wheel."""
    shutil.copytree(PROJECT_ROOT / PACKAGE, tmp_path / "src" / PACKAGE)
    code, report, _ = doctor_in_this_process(tmp_path / "src", monkeypatch, capsys)
    assert code == 1, report
    [line] = [line for line in report.splitlines() if "this project's code 2 times" in line]
    assert line.startswith(PROBLEM) and f"uploads {tmp_path / 'src'} as coiled_local_src" in line
    assert report.splitlines()[-1] == "doctor: 1 problem to fix before running on Coiled"


def write_distribution(site: Path, name: str, *metadata_lines: str, installer: str | None = None) -> None:
    """An installed distribution as pip (or conda) leaves it: a dist-info folder with METADATA (and INSTALLER)."""
    info = site / f"{name.replace('-', '_')}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", f"Name: {name}", *metadata_lines, ""]))
    if installer:
        (info / "INSTALLER").write_text(f"{installer}\n")


def test_broken_requirements_and_versionless_packages_are_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    write_distribution(tmp_path, "needs-old-dask", "Version: 1.0", "Requires-Dist: dask==1.0")
    write_distribution(tmp_path, "no-version-given", "Version: ")
    code, report, _ = doctor_in_this_process(tmp_path, monkeypatch, capsys)
    assert code == 1, report
    problems = [line for line in report.splitlines() if line.startswith(PROBLEM)]
    assert len(problems) == 2, report
    assert "pip check: needs-old-dask 1.0 has requirement dask==1.0, but you have dask " in problems[0]
    assert problems[1].endswith("no version recorded for no-version-given: package sync cannot pin it on the workers")


def test_a_package_the_scan_cannot_read_is_named_instead_of_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    write_distribution(tmp_path, "no-version-header")
    code, report, errors = doctor_in_this_process(tmp_path, monkeypatch, capsys)
    assert code == 1, report
    assert "Traceback" not in errors
    [line] = [line for line in report.splitlines() if line.startswith(PROBLEM)]
    assert "coiled's environment scan fails (" in line
    assert line.endswith("as package sync would when a cluster starts; no version in the metadata of no-version-header")


def test_pins_are_the_pyproject_ones_whether_installed_or_not() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {None: project["dependencies"], **project["optional-dependencies"]}
    expected = {
        (Requirement(text).name, extra, str(Requirement(text).specifier))
        for extra, texts in groups.items()
        for text in texts
    }
    pins, [finding] = project_pins()
    assert {(pin.requirement.name, pin.extra, str(pin.requirement.specifier)) for pin in pins} == expected
    assert finding.level == (OK if is_installed() else NOTE)


def test_a_package_at_another_version_than_its_pin_is_a_problem() -> None:
    installed = installed_from_metadata()
    pandas = installed["pandas"]
    assert pandas.version == metadata.version("pandas")
    findings = check_pins([Pin(Requirement(f"pandas=={pandas.version}")), Pin(Requirement("pandas==0.0.1"))], installed)
    assert [(f.level, f.message) for f in findings] == [
        (PROBLEM, f"pandas {pandas.version} is installed by {pandas.source}; the project pins pandas==0.0.1")
    ]


def test_a_missing_runtime_pin_is_a_problem_and_a_missing_extra_a_note() -> None:
    findings = check_pins(
        [Pin(Requirement("surely-not-installed-here==1.0")), Pin(Requirement("surely-not-either==2.0"), "extra")],
        installed_from_metadata(),
    )
    assert [(f.level, f.message) for f in findings] == [
        (PROBLEM, "surely-not-installed-here is not installed; the project pins surely-not-installed-here==1.0"),
        (NOTE, "extra 'extra' is not installed (surely-not-either): pip install -e \".[extra]\""),
    ]


def test_the_object_storage_libraries_present_are_noted() -> None:
    found = Installed("1.0", "pip")
    assert check_storage({"s3fs": found, "adlfs": found}) == [
        Finding(NOTE, "object storage: s3fs (s3://), adlfs (abfs://)")
    ]
    assert check_storage({}) == [Finding(NOTE, "object storage: none installed: local files only")]


def test_another_python_minor_version_is_a_problem() -> None:
    major, minor = map(int, PYTHON_VERSION.split("."))
    assert check_python((major, minor))[0].level == OK
    [finding] = check_python((major, minor - 1))
    assert finding.level == PROBLEM and f"the project is pinned for Python {PYTHON_VERSION}" in finding.message


@pytest.mark.parametrize(
    ("versions", "level", "message"),
    [
        ({"dask": "2024.8.0", "distributed": "2024.8.0"}, OK, "dask and distributed are both 2024.8.0"),
        ({"dask": "2024.8.0", "distributed": "2024.9.0"}, PROBLEM, "dask 2024.8.0 and distributed 2024.9.0 differ"),
        ({"dask": "2024.8.0", "tornado": None}, PROBLEM, "tornado is not installed"),
    ],
)
def test_dask_and_distributed_must_be_one_version(versions: dict, level: str, message: str) -> None:
    [finding] = check_must_match(versions)
    assert finding.level == level and finding.message.startswith(message)


def write_conda_record(prefix: Path, name: str, version: str, files: list[str]) -> None:
    """What conda writes for each package it installs: a conda-meta record listing the package's files."""
    for file in files:
        (prefix / file).parent.mkdir(parents=True, exist_ok=True)
        (prefix / file).touch()
    record = {
        "name": name,
        "version": version,
        "build": "0",
        "build_number": 0,
        "subdir": "linux-64",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "depends": [],
        "files": files,
        "requested_spec": f"{name}={version}",
    }
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / f"{name}-{version}-0.json").write_text(json.dumps(record))


def conda_environment(prefix: Path, pendulum: str, graphviz_binding: str | None) -> list[dict]:
    """The coiled scan of a conda environment laid out as environment.yml leaves it.

    conda installs python, Graphviz (its ``dot`` program, conda name ``graphviz``) and
    pendulum (a Python distribution: its dist-info says INSTALLER conda); pip installs the
    rest, here the ``graphviz`` Python binding. Only records and metadata are written:
    the scan reads nothing else.
    """
    site = prefix / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    write_distribution(site, "pendulum", f"Version: {pendulum}", installer="conda")
    write_conda_record(
        prefix, "pendulum", pendulum, [str((site / "pendulum.dist-info" / "METADATA").relative_to(prefix))]
    )
    write_conda_record(prefix, "graphviz", "12.2.1", ["bin/dot"])
    write_conda_record(prefix, "python", f"{PYTHON_VERSION}.0", [f"bin/python{PYTHON_VERSION}"])
    if graphviz_binding:
        write_distribution(site, "graphviz", f"Version: {graphviz_binding}", installer="pip")
    return asyncio.run(scan_prefix(prefix=prefix, base_prefix=prefix, locations=[site], site_pkgs_paths={site}))


def pins_named(*names: str) -> list[Pin]:
    return [pin for pin in project_pins()[0] if pin.requirement.name in names]


def pinned_version(name: str) -> str:
    [pin] = pins_named(name)
    return next(iter(pin.requirement.specifier)).version


def test_conda_installed_packages_are_compared_with_the_pins_like_pip_installed_ones(tmp_path: Path) -> None:
    pendulum, graphviz = pinned_version("pendulum"), pinned_version("graphviz")
    installed = installed_from_scan(conda_environment(tmp_path, pendulum, graphviz_binding=graphviz))
    assert installed == {"pendulum": Installed(pendulum, "conda"), "graphviz": Installed(graphviz, "pip")}
    findings = check_pins(pins_named("pendulum", "graphviz"), installed)
    assert [(f.level, f.message) for f in findings] == [
        (OK, "2 installed packages match their pins, 1 of them installed by conda (pendulum)")
    ]


def test_a_conda_package_at_another_version_than_its_pin_is_a_problem(tmp_path: Path) -> None:
    pendulum = pinned_version("pendulum")
    installed = installed_from_scan(conda_environment(tmp_path, "2.0.0", graphviz_binding=pinned_version("graphviz")))
    [finding] = check_pins(pins_named("pendulum"), installed)
    assert (finding.level, finding.message) == (
        PROBLEM,
        f"pendulum 2.0.0 is installed by conda; the project pins pendulum=={pendulum}",
    )


def test_conda_programs_are_not_taken_for_the_python_packages_of_the_same_name(tmp_path: Path) -> None:
    """conda-forge's graphviz is Graphviz itself (12.2.1 here); the pinned graphviz is PyPI's Python binding."""
    packages = conda_environment(tmp_path, pinned_version("pendulum"), graphviz_binding=None)
    assert {(p["name"], p["version"], p["source"]) for p in packages} == {
        ("pendulum", pinned_version("pendulum"), "conda"),
        ("graphviz", "12.2.1", "conda"),
        ("python", f"{PYTHON_VERSION}.0", "conda"),
    }
    installed = installed_from_scan(packages)
    assert list(installed) == ["pendulum"]
    findings = check_pins(pins_named("graphviz"), installed)
    assert [(f.level, f.message) for f in findings] == [
        (OK, "0 installed packages match their pins"),
        (NOTE, "extra 'diagram' is not installed (graphviz): pip install -e \".[diagram]\""),
    ]
