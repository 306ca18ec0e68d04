"""environment.yml asks conda-forge only for what the conda-forge table lists, and pip for the rest.

``_conda_forge`` in cookiecutter.json lists every package a generated environment.yml takes
from conda-forge, with the versions conda-forge has and the evidence; pip installs the
project with the same extras as the README's pip set-up, so both end with the same pins.
The table is checked against conda-forge's repodata by ``tools/refresh_pins.py``: here
against a small channel served on 127.0.0.1, and an address where nothing listens.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import conda_forge
import pytest
import yaml
from bakery import CHOICES, CONTEXT, DEFAULTS, TEMPLATE_ROOT, bake
from test_bake import MATRIX, label

TABLE = CONTEXT["_conda_forge"]
# What environment.yml, make venv and the README's pip set-up install; the other extras only when asked for.
DEFAULT_EXTRAS = {"dev", "diagram"}
REFRESH_PINS = TEMPLATE_ROOT / "tools" / "refresh_pins.py"


@pytest.fixture(scope="module", params=MATRIX, ids=label)
def baked(request, tmp_path_factory) -> tuple[dict, Path]:
    answers = {**{k: v for k, v in DEFAULTS.items() if not k.startswith("_")}, **request.param}
    return answers, bake(tmp_path_factory.mktemp("bake"), **request.param)


def environment_of(project: Path) -> tuple[list[str], list[str]]:
    """environment.yml's conda dependencies and its pip section."""
    environment = yaml.safe_load((project / "environment.yml").read_text(encoding="utf-8"))
    assert environment["channels"] == ["conda-forge", "nodefaults"]
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    [pip] = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    return conda, pip


def test_conda_dependencies_are_the_tables_at_listed_versions(baked) -> None:
    answers, project = baked
    conda, _ = environment_of(project)
    asked = dict(item.split("=", 1) if "=" in item else (item, None) for item in conda)
    assert asked == conda_forge.requested(CONTEXT, answers["python_version"])
    assert asked["python"] == answers["python_version"]
    for name, version in asked.items():
        allowed = TABLE[name]["versions"]
        assert (version in allowed) if version else allowed == conda_forge.ANY, f"{name}={version}: table has {allowed}"


def extras(pattern: str, text: str) -> list[set[str]]:
    return [set(found.split(",")) for found in re.findall(pattern, text)]


def test_pip_section_installs_the_extras_of_the_readmes_pip_set_up(baked) -> None:
    """So the conda and the pip set-up install the same pinned packages: every extra there is."""
    _, project = baked
    _, pip = environment_of(project)
    [from_environment] = extras(r"^-e \.\[([a-z,]+)\]$", "\n".join(pip))
    readme = (project / "README.md").read_text(encoding="utf-8")
    set_up = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    [from_readme] = extras(r'pip install -e "\.\[([a-z,]+)\]"', set_up)
    [from_makefile] = extras(r"(?m)^EXTRAS \?= ([a-z,]+)$", (project / "Makefile").read_text(encoding="utf-8"))
    assert from_environment == from_readme == from_makefile == DEFAULT_EXTRAS


def test_every_other_extra_is_installed_only_when_asked_for_and_documented(baked) -> None:
    """Storage libraries, dask-gateway's client (and the local servers of their tests) are opt-in: the README
    says how to add each."""
    _, project = baked
    optional = set(CONTEXT["_requirements"]) - {"runtime"} - DEFAULT_EXTRAS
    assert optional == {"s3", "gcs", "azure", "s3-test", "gateway", "gateway-test"}
    readme = (project / "README.md").read_text(encoding="utf-8")
    asked = set().union(*extras(r'pip install -e "\.\[([a-z0-9,-]+)\]"', readme)) - DEFAULT_EXTRAS
    assert asked == optional, asked


def conda_paragraph(readme: str) -> str:
    [paragraph] = [block for block in readme.split("\n\n") if "conda-forge supplies only" in block]
    return paragraph


@pytest.mark.parametrize("readme", ["repository", "generated"])
def test_both_readmes_name_every_package_conda_forge_supplies(readme: str, tmp_path: Path) -> None:
    path = TEMPLATE_ROOT / "README.md" if readme == "repository" else bake(tmp_path) / "README.md"
    paragraph = conda_paragraph(path.read_text(encoding="utf-8"))
    named = [name for name in TABLE if f"`{name}`" in paragraph]
    assert named == list(TABLE), paragraph
    assert "PyPI" in paragraph and "because" in paragraph


def test_the_table_says_what_each_package_is_for_and_why_it_is_there() -> None:
    for name, entry in TABLE.items():
        assert set(entry) <= {"versions", "version_from", "why", "evidence"}, name
        assert entry["why"] and entry["evidence"], name
        assert entry["versions"] == conda_forge.ANY or entry["versions"], name
        assert entry.get("version_from") in (None, "python_version", "_pins"), name
        if entry.get("version_from") == "_pins":
            assert all(name in pins for pins in CONTEXT["_pins"].values()), name
    assert TABLE["python"]["versions"] == CHOICES["python_version"]


def test_every_pin_environment_yml_asks_conda_forge_for_is_listed() -> None:
    assert conda_forge.drift(CONTEXT) == []


def test_a_pin_the_table_does_not_list_is_caught() -> None:
    """What refresh_pins.py refuses to write, and what test_every_pin_... would then report."""
    pins = {**CONTEXT["_pins"], "3.10": {**CONTEXT["_pins"]["3.10"], "pendulum": "2.1.3"}}
    assert conda_forge.drift({**CONTEXT, "_pins": pins}) == [
        "python 3.10: environment.yml would ask conda-forge for pendulum=2.1.3, but _conda_forge lists 2.1.2; "
        "check conda-forge and update the table"
    ]


@pytest.mark.parametrize(
    ("dependency", "python", "admitted"),
    [
        ("python >=3.9,<3.10.0a0", "3.9", True),
        ("python >=3.9,<3.10.0a0", "3.10", False),
        ("python >=3.10", "3.9", False),
        ("python >=3.10", "3.11", True),
        ("python 3.11.* *_cpython", "3.11", True),
        ("python 3.11.* *_cpython", "3.10", False),
        ("python >=2.7,<3|>=3.9", "3.9", True),
        ("python", "3.9", True),
    ],
)
def test_a_builds_python_requirement_is_read_as_conda_does(dependency: str, python: str, admitted: bool) -> None:
    assert conda_forge.admits(dependency, python) is admitted


PYTHON_RELEASES = {"3.9": "3.9.23", "3.10": "3.10.18", "3.11": "3.11.13"}


def record(name: str, version: str, depends: list[str] | None = None) -> dict:
    return {"name": name, "version": version, "build": "0", "build_number": 0, "depends": depends or []}


def compiled_for(python: str) -> list[str]:
    major, minor = python.split(".")
    return [f"python >={python},<{major}.{int(minor) + 1}.0a0", f"python_abi {python}.* *_cp{major}{minor}"]


def small_channel(without: tuple[str, str, str] | None = None, pip_from: str = "3.9") -> dict[str, bytes]:
    """A conda-forge in miniature: the builds the table needs, minus ``without`` (name, python, subdir),
    beside builds that must not count (a pendulum 3, a py3.10+ pip, another package named pip-...)."""
    noarch = {
        "pip-25.2-pyh0_0.conda": record("pip", "25.2", [f"python >={pip_from}"]),
        "pip-26.0-pyh0_0.conda": record("pip", "26.0", ["python >=3.10"]),
        "pip-tools-7.4.1-pyh0_0.conda": record("pip-tools", "7.4.1", ["python >=3.9"]),
        "prefect-1.4.0-pyh0_0.tar.bz2": record("prefect", "1.4.0", ["python >=3.7"]),
    }
    files = {"/conda-forge/noarch/repodata.json": {"info": {"subdir": "noarch"}, "packages.conda": noarch}}
    for subdir in conda_forge.SUBDIRS:
        packages = {"graphviz-12.2.1-h0_0.conda": record("graphviz", "12.2.1", ["libgd >=2.3.3"])}
        packages["pendulum-3.1.0-py311h0_0.conda"] = record("pendulum", "3.1.0", compiled_for("3.11"))
        for python, release in PYTHON_RELEASES.items():
            packages[f"python-{release}-h0_0_cpython.conda"] = record("python", release)
            if without != ("pendulum", python, subdir):
                packages[f"pendulum-2.1.2-py{python}h0_6.conda"] = record("pendulum", "2.1.2", compiled_for(python))
        files[f"/conda-forge/{subdir}/repodata.json"] = {"info": {"subdir": subdir}, "packages.conda": packages}
    return {path: json.dumps(repodata).encode() for path, repodata in files.items()}


@contextmanager
def serving(files: dict[str, bytes], compress: bool = True) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 for ``files`` (gzipped when the client accepts it); yields the channel URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            zipped = compress and "gzip" in self.headers.get("Accept-Encoding", "")
            body = gzip.compress(body) if zipped else body
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if zipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/conda-forge"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def check_conda_forge(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``tools/refresh_pins.py --conda-forge-only``, the maintainer's command, as a process of its own."""
    return subprocess.run(
        [sys.executable, str(REFRESH_PINS), "--conda-forge-only", *args],
        env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_the_table_checks_out_against_a_channel_that_has_every_build(compress: bool) -> None:
    with serving(small_channel(), compress) as channel:
        done = check_conda_forge("--conda-forge-url", channel)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"conda-forge: checked: {channel} has every version _conda_forge lists for Python 3.11, 3.10, 3.9 "
        "on linux-64, osx-64, osx-arm64"
    )


@pytest.mark.parametrize(
    ("channel_files", "missing"),
    [
        (small_channel(without=("pendulum", "3.9", "osx-arm64")), ["pendulum=2.1.2 for Python 3.9 on osx-arm64"]),
        (small_channel(pip_from="3.10"), [f"pip for Python 3.9 on {subdir}" for subdir in conda_forge.SUBDIRS]),
    ],
    ids=["no-pendulum-py39-osx-arm64", "no-pip-for-py39"],
)
def test_a_build_the_channel_lacks_fails_the_check_by_name(channel_files: dict, missing: list[str]) -> None:
    with serving(channel_files) as channel:
        done = check_conda_forge(CONDA_FORGE_URL=channel)  # the URL from the environment this time
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if "MISSING" in line] == [f"conda-forge: MISSING {item}" for item in missing]
    assert lines[-1].startswith(f"conda-forge: {len(missing)} listed builds are not on {channel};")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_channel_is_reported_as_not_checked() -> None:
    channel = f"http://127.0.0.1:{free_port()}/conda-forge"
    done = check_conda_forge("--conda-forge-url", channel)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith(f"conda-forge: NOT CHECKED: cannot read {channel}/noarch/repodata.json (")
    assert last.endswith("; _conda_forge was not compared with conda-forge")
    assert "Traceback" not in done.stderr


def test_a_channel_without_repodata_is_reported_as_not_checked() -> None:
    files = {path: body for path, body in small_channel().items() if "osx-64" not in path}
    with serving(files) as channel:
        done = check_conda_forge("--conda-forge-url", channel)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"conda-forge: NOT CHECKED: cannot read {channel}/osx-64/repodata.json (Not Found); "
        "_conda_forge was not compared with conda-forge"
    )
