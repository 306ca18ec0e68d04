"""``python -m {{ cookiecutter.package_name }} doctor`` on this very environment.

The report reads the real environment with the coiled client's offline scan, so these
tests pass whether the project is installed (``pip install -e .``) or only on
``PYTHONPATH``, and fail when this environment drifts from the pins. The clean report
comes from the command a user runs; the broken environments are this process's with one
folder put in front of ``sys.path`` and ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.doctor import (
    DISTRIBUTION,
    NOTE,
    OK,
    PROBLEM,
    PYTHON_VERSION,
    Pin,
    check_must_match,
    check_pins,
    check_python,
    project_pins,
)

try:
    import tomllib
except ImportError:  # Python < 3.11: pytest depends on tomli there
    import tomli as tomllib

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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


def is_installed() -> bool:
    try:
        metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_this_environment_has_no_problem_and_ships_the_code_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "doctor"], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT
    )
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


def write_distribution(site: Path, name: str, *metadata_lines: str) -> None:
    """An installed distribution as pip leaves it: a dist-info folder with METADATA."""
    info = site / f"{name.replace('-', '_')}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", f"Name: {name}", *metadata_lines, ""]))


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
    pandas = metadata.version("pandas")
    findings = check_pins([Pin(Requirement(f"pandas=={pandas}")), Pin(Requirement("pandas==0.0.1"))])
    assert [(f.level, f.message) for f in findings] == [
        (PROBLEM, f"pandas {pandas} is installed; the project pins pandas==0.0.1")
    ]


def test_a_missing_runtime_pin_is_a_problem_and_a_missing_extra_a_note() -> None:
    findings = check_pins(
        [Pin(Requirement("surely-not-installed-here==1.0")), Pin(Requirement("surely-not-either==2.0"), "extra")]
    )
    assert [(f.level, f.message) for f in findings] == [
        (PROBLEM, "surely-not-installed-here is not installed; the project pins surely-not-installed-here==1.0"),
        (NOTE, "extra 'extra' is not installed (surely-not-either): pip install -e \".[extra]\""),
    ]


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
