"""Every ``<PREFIX>_*`` setting against awkward values: accepted as meant, or refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.clusters import ClusterConfigError, coiled_cluster_kwargs
from {{ cookiecutter.package_name }}.plumbing.overrides import SettingError, read_setting, variable
from {{ cookiecutter.package_name }}.plumbing.rules import RULES, unknown_variables
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE

PROJECT_ROOT = Path(__file__).resolve().parents[1]

HUGE = "9" * 40
PROBES = ["", "  ", "0", "-1", "2", "1e20", "inf", "nan", "\u00b2", "\u0663", HUGE, "text"]
# Optional names (empty means Coiled's default): words such as inf or nan are names too.
NAMES = ["", "  ", "0", "2", "1e20", "inf", "nan", HUGE, "text"]
# What each setting makes of the probes it accepts; every other probe is refused.
ACCEPTED = {
    "CLUSTER": {},
    "LOCAL_N_WORKERS": {"2": 2},
    "LOCAL_THREADS_PER_WORKER": {"2": 2},
    "LOCAL_PROCESSES": {},
    "COILED_WORKSPACE": {probe: probe.strip() for probe in NAMES},
    "COILED_REGION": {probe: probe.strip() for probe in ["", "  ", "inf", "nan", "text"]},
    "COILED_N_WORKERS": {"2": 2},
    "COILED_WORKER_CPU": {"2": 2},
    "COILED_WORKER_MEMORY": {},
    "COILED_IDLE_TIMEOUT": {},
    "COILED_SPOT_POLICY": {},
    "COILED_NAME": {probe: probe.strip() for probe in NAMES},
    "COILED_NO_CLIENT_TIMEOUT": {},
    "COILED_KEEP": {},
    "RETRY_DELAY_SECONDS": {"0": 0.0, "2": 2.0},
    "CONNECT_TIMEOUT_SECONDS": {"2": 2.0},
    "GATEWAY_ADDRESS": {"": "", "  ": ""},
    "GATEWAY_N_WORKERS": {"2": 2},
}
# The backend that reads each group of settings: a run reads its own backend's settings only.
BACKEND_OF = {"COILED_": "coiled", "GATEWAY_": "gateway", "CONNECT_": "tcp://127.0.0.1:8786"}
CASES = [(key, probe) for key in RULES for probe in PROBES]


def test_the_table_covers_every_setting() -> None:
    assert set(ACCEPTED) == set(RULES)


@pytest.mark.parametrize(("key", "probe"), CASES)
def test_each_value_is_read_as_meant_or_refused_in_one_line(key: str, probe: str) -> None:
    name = variable(key)
    if probe in ACCEPTED[key]:
        assert read_setting(key, "", {name: probe}) == ACCEPTED[key][probe]
        return
    with pytest.raises(SettingError) as refused:
        read_setting(key, "", {name: probe})
    message = str(refused.value)
    assert message.startswith(f"{name}: {probe!r} is ") and "\n" not in message


@pytest.mark.parametrize(("key", "probe"), [case for case in CASES if case[0].startswith("COILED_")])
def test_no_refused_value_reaches_coiled(key: str, probe: str) -> None:
    """``coiled.Cluster`` only ever gets keyword arguments built from accepted values (the
    memory and vCPUs start from a shape clouds offer, whatever the baked answers)."""
    environ = {variable("COILED_WORKER_MEMORY"): "4GiB", variable("COILED_WORKER_CPU"): "2", variable(key): probe}
    if probe in ACCEPTED[key]:
        assert coiled_cluster_kwargs("some-flow", environ)
    else:
        with pytest.raises(ClusterConfigError, match=rf"^{variable(key)}: "):
            coiled_cluster_kwargs("some-flow", environ)


def test_memory_no_cloud_offers_per_vcpu_is_refused() -> None:
    environ = {variable("COILED_WORKER_MEMORY"): "1TiB", variable("COILED_WORKER_CPU"): "4"}
    with pytest.raises(ClusterConfigError) as refused:
        coiled_cluster_kwargs("some-flow", environ)
    assert str(refused.value) == (
        f"{variable('COILED_WORKER_MEMORY')}: '1TiB' is 256 GiB per vCPU with {variable('COILED_WORKER_CPU')} 4; "
        "use 0.5 to 64 GiB per vCPU, the range cloud VMs offer"
    )


@pytest.mark.parametrize("key", [key for key in RULES if key != "RETRY_DELAY_SECONDS"])
def test_run_refuses_with_exit_2_and_the_variables_line(key: str, monkeypatch, capsys) -> None:
    """Nothing starts: the run stops at the line, before any cluster (RETRY_DELAY_SECONDS is read
    when the flows are imported: the next test starts a fresh interpreter for it)."""
    monkeypatch.setenv(variable(key), "-1")
    backend = next((name for prefix, name in BACKEND_OF.items() if key.startswith(prefix)), "local")
    cluster = [] if key == "CLUSTER" else ["--cluster", backend]
    assert main(["run", next(iter(FLOWS)), *cluster]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {variable(key)}: '-1' is "), lines


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    typo = f"{ENV_PREFIX}COILED_WORKER_MEMROY"
    assert unknown_variables({typo: "8GiB", f"{ENV_PREFIX}COILED_N_WORKERS": "2", "PATH": "/bin"}, ENV_PREFIX) == [
        f"warning: {typo} is not a setting of this project and is ignored; "
        f"did you mean {ENV_PREFIX}COILED_WORKER_MEMORY?"
    ]


@pytest.mark.parametrize("runner", ["run", "prefect run -p"])
def test_a_retry_delay_refused_at_import_is_one_line_and_exit_2(runner: str) -> None:
    flow = next(iter(FLOWS))
    command = (
        [sys.executable, "-m", PACKAGE, "run", flow]
        if runner == "run"
        else [sys.executable, "-m", "prefect", "run", "-p", FLOWS[flow].source]
    )
    env = {**os.environ, variable("RETRY_DELAY_SECONDS"): "1e20", variable("CLUSTER"): "local"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: {variable('RETRY_DELAY_SECONDS')}: '1e20' is not a number of seconds from 0 to 3600"
    )
    assert "Traceback" not in done.stdout + done.stderr
