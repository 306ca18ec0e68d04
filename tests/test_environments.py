"""Every pin set is real: a fresh virtual environment per supported Python, from the generated pins.

For each Python in the pin table that this machine has (see pythonenvs.py), ``pip check``
must be clean and every pin installed, the generated test suite a user runs must pass
inside that venv with the project installed editable, and the coiled client's real offline scan must
ship the project's code exactly once. A worker from the 3.9 environment joining a cluster
started here must be refused at connect time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import CHOICES, CONTEXT, bake, package_of
from pythonenvs import PythonEnv, environment_for, output, run

SCAN = """
import asyncio, json
from coiled.scan import scan_prefix
from coiled.software_utils import partition_local_packages, partition_local_python_code_packages
rest, local_code = partition_local_python_code_packages(asyncio.run(scan_prefix()))
_, built = partition_local_packages(rest)
print(json.dumps({
    "local_code": [[p["name"], str(p["path"])] for p in local_code],
    "built": [[p["name"], p["wheel_target"]] for p in built],
}))
"""


def per_python(*versions: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("python_env", versions, indirect=True)


@pytest.fixture(scope="module")
def python_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PythonEnv:
    return environment_for(request.param, tmp_path_factory)


@pytest.mark.slow
@per_python(*CHOICES["python_version"])
def test_pins_install_with_a_clean_pip_check(python_env: PythonEnv) -> None:
    checked = run([python_env.python, "-m", "pip", "check"], cwd=python_env.project)
    assert checked.returncode == 0, output(checked)
    listed = run([python_env.python, "-m", "pip", "list", "--format", "json"], cwd=python_env.project)
    installed = {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(listed.stdout)}
    groups = ("runtime", "dev", "diagram")  # what `pip install -e ".[dev,diagram]"` installs
    names = [name.split("[")[0] for group in groups for name in CONTEXT["_requirements"][group]]
    pins = {name: CONTEXT["_pins"][python_env.version][name] for name in names}
    assert {name: installed.get(name.lower()) for name in pins} == pins
    assert not {"s3fs", "gcsfs", "adlfs", "moto"} & set(installed), "a storage extra was installed unasked"


@pytest.mark.slow
@per_python(*CHOICES["python_version"])
def test_generated_suite_passes_inside_the_venv(python_env: PythonEnv) -> None:
    """The suite a user runs (``pytest``: their flows and a contract check per flow; bakery.py)."""
    done = run([python_env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=python_env.project)
    assert done.returncode == 0, output(done)
    assert " passed" in done.stdout and " failed" not in done.stdout


def scan(python_env: PythonEnv, **env: str) -> dict:
    """The coiled client's own offline scan, run from the project folder as a flow run would be."""
    done = run([python_env.python, "-c", SCAN], cwd=python_env.project, **env)
    assert done.returncode == 0, output(done)
    return json.loads(done.stdout.splitlines()[-1])


def doctor(python_env: PythonEnv, **env: str) -> subprocess.CompletedProcess:
    return run([python_env.python, "-m", python_env.package, "doctor"], cwd=python_env.project, **env)


@pytest.mark.slow
@per_python(*CHOICES["python_version"])
def test_editable_flat_layout_ships_the_code_exactly_once(python_env: PythonEnv) -> None:
    slug = python_env.project.name
    assert scan(python_env) == {"local_code": [], "built": [[slug, str(python_env.project)]]}
    done = doctor(python_env)
    assert done.returncode == 0, output(done)
    assert f"ships this project's code once: it builds a wheel of {slug} from {python_env.project}" in done.stdout


@pytest.mark.slow
@per_python(CHOICES["python_version"][0])
def test_a_src_like_folder_on_sys_path_ships_the_code_twice(python_env: PythonEnv, tmp_path: Path) -> None:
    """What a src layout installed editable does: its src/ folder on sys.path is uploaded beside the wheel
    (a matter of layout, not of pins: one Python shows it)."""
    src = tmp_path / "src"
    shutil.copytree(python_env.project / python_env.package, src / python_env.package)
    slug = python_env.project.name
    assert scan(python_env, PYTHONPATH=str(src)) == {
        "local_code": [["coiled_local_src", str(src)]],
        "built": [[slug, str(python_env.project)]],
    }
    done = doctor(python_env, PYTHONPATH=str(src))
    assert done.returncode == 1, output(done)
    assert "problem  package sync would ship this project's code 2 times" in done.stdout


CONNECT = """
import logging, subprocess, sys
from distributed import LocalCluster
from {package}.plumbing.backends import ClusterSpec, VersionMismatchError, start_class
from {package}.plumbing.plan import RunPlan
from {package}.plumbing.session import ClusterSession

workers = []


def cluster_with_a_worker_from_the_other_venv():
    cluster = LocalCluster(n_workers=0, dashboard_address=":0")
    worker = [sys.argv[1], "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--no-nanny"]
    worker += ["--nthreads", "1", "--no-dashboard"]
    workers.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    cluster.wait_for_workers(1, timeout=120)
    return cluster


spec = ClusterSpec("local", "connect", cluster_with_a_worker_from_the_other_venv, {{}}, start_class)
session = ClusterSession(RunPlan("connect", {{}}, spec), logging.getLogger("run"))
try:
    session.open()
    print("connected")
except VersionMismatchError as error:
    print("refused", error)
finally:
    for worker in workers:  # a worker whose scheduler is gone may hang in its own shutdown
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)
print("closed" if session.client is None and session.cluster is None else "left open")
"""


@pytest.mark.slow
@per_python("3.9")
def test_a_worker_from_another_pin_set_is_refused_on_connect(python_env: PythonEnv, tmp_path: Path) -> None:
    """The flows' connect path, on a real cluster from this environment with a worker from the 3.9 venv."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here == python_env.version:
        pytest.skip(f"the template environment is itself Python {here}: no mismatch to provoke")
    project = bake(tmp_path, python_version=here)
    script = CONNECT.format(package=package_of(project))
    done = run([sys.executable, "-c", script, python_env.python], cwd=project, timeout=300, PYTHONPATH=str(project))
    assert done.returncode == 0, output(done)
    lines = done.stdout.splitlines()
    refused, closed = (
        lines.index(
            "refused the cluster's packages do not match this environment's; rebuild the environment from the pins and run `doctor` before retrying:"
        ),
        lines[-1],
    )
    message = "\n".join(lines[refused + 1 : -1])
    assert closed == "closed" and all(line.startswith("  ") for line in lines[refused + 1 : -1]), output(done)
    assert f"python: this machine has {here}, worker tcp://127.0.0.1:" in message
    worker_pins, our_pins = CONTEXT["_pins"][python_env.version], CONTEXT["_pins"][here]
    for name in ("dask", "distributed", "tornado", "cloudpickle", "msgpack"):
        named = f"{name}: this machine has {our_pins[name]}, worker tcp://" in message
        assert named == (worker_pins[name] != our_pins[name]), name
