"""Every setting (``rules.SETTINGS``) against awkward values: accepted as meant, or refused in one line
naming its ``<PREFIX>_*`` variable; its default in settings.py, from the generation answers, is one
its rule accepts.

The docs' settings table is generated from ``rules.SETTINGS`` and is checked where it is generated.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.plan import cluster_spec, setting
from {{ cookiecutter.package_name }}.plumbing.rules import SETTINGS, SettingError, unknown_variables
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, project_env

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
    "RESULTS": {probe: probe for probe in PROBES if probe.strip()},  # a folder may have any name
    "RESUME": {},
    "HISTORY": {probe: probe.strip() for probe in PROBES},  # a file may have any name; empty: no history
    "SLACK_WEBHOOK_URL": {"": "", "  ": ""},
    "NOTIFY_ON": {},
}
# A value each setting refuses, where "-1" is one it takes (a file or folder may have that name).
REFUSED = {"HISTORY": "runs\n.sqlite", "RESULTS": "s3://"}
# Settings whose refused value is not repeated in the message: whoever has it can use it.
SECRETS = {"SLACK_WEBHOOK_URL"}
# The generation answers behind settings.py's defaults, as given when this project was generated.
ANSWERS = {
    "default_cluster": {{ cookiecutter.default_cluster | literal }},
    "coiled_workspace": {{ cookiecutter.coiled_workspace | literal }},
    "coiled_region": {{ cookiecutter.coiled_region | literal }},
    "coiled_n_workers": {{ cookiecutter.coiled_n_workers | literal }},
    "coiled_worker_cpu": {{ cookiecutter.coiled_worker_cpu | literal }},
    "coiled_worker_memory": {{ cookiecutter.coiled_worker_memory | literal }},
    "coiled_idle_timeout": {{ cookiecutter.coiled_idle_timeout | literal }},
    "coiled_spot_policy": {{ cookiecutter.coiled_spot_policy | literal }},
}
# The backend that reads each group of settings: a run reads its own backend's settings only.
BACKEND_OF = {"COILED_": "coiled", "GATEWAY_": "gateway", "CONNECT_": "tcp://127.0.0.1:8786"}
CASES = [(key, probe) for key in SETTINGS for probe in PROBES]


def variable(key: str) -> str:
    return ENV_PREFIX + key


def test_the_table_covers_every_setting() -> None:
    assert set(ACCEPTED) == set(SETTINGS)


@pytest.mark.parametrize("key", SETTINGS)
def test_each_setting_has_a_valid_default_and_a_one_line_meaning(key: str) -> None:
    """What the settings table says of it, and its constant in settings.py, which its rule accepts."""
    meaning = SETTINGS[key].meaning
    assert meaning.strip() and "\n" not in meaning and "|" not in meaning  # one cell of a Markdown table
    assert setting(key, {}) == SETTINGS[key].rule(getattr(settings, key))


def test_the_defaults_are_the_answers_given_at_generation() -> None:
    answered = {entry.answer: key for key, entry in SETTINGS.items() if entry.answer}
    assert set(answered) == set(ANSWERS)
    for answer, key in answered.items():
        assert setting(key, {}) == SETTINGS[key].rule(ANSWERS[answer]), answer


@pytest.mark.parametrize(("key", "probe"), CASES)
def test_each_value_is_read_as_meant_or_refused_in_one_line(key: str, probe: str) -> None:
    name = variable(key)
    if probe in ACCEPTED[key]:
        assert setting(key, {name: probe}) == ACCEPTED[key][probe]
        return
    with pytest.raises(SettingError) as refused:
        setting(key, {name: probe})
    message = str(refused.value)
    shown = "the value (not shown: a webhook URL is a secret)" if key in SECRETS else repr(probe)
    assert message.startswith(f"{name}: {shown} is ") and "\n" not in message


def coiled_spec_of(environ: dict[str, str]) -> object:
    import dask

    with dask.config.set({"coiled.token": "a-token"}):  # a spec is only made with a token
        return cluster_spec("coiled", "some-flow", environ=environ)


@pytest.mark.parametrize(("key", "probe"), [case for case in CASES if case[0].startswith("COILED_")])
def test_no_refused_value_reaches_coiled(key: str, probe: str) -> None:
    """``coiled.Cluster`` only ever gets keyword arguments built from accepted values (the
    memory and vCPUs start from a shape clouds offer, whatever the baked answers)."""
    environ = {variable("COILED_WORKER_MEMORY"): "4GiB", variable("COILED_WORKER_CPU"): "2", variable(key): probe}
    if probe in ACCEPTED[key]:
        assert coiled_spec_of(environ)
    else:
        with pytest.raises(SettingError, match=rf"^{variable(key)}: "):
            coiled_spec_of(environ)


def test_memory_no_cloud_offers_per_vcpu_is_refused() -> None:
    environ = {variable("COILED_WORKER_MEMORY"): "1TiB", variable("COILED_WORKER_CPU"): "4"}
    with pytest.raises(SettingError) as refused:
        coiled_spec_of(environ)
    assert str(refused.value) == (
        f"{variable('COILED_WORKER_MEMORY')}: '1TiB' is 256 GiB per vCPU with {variable('COILED_WORKER_CPU')} 4; "
        "use 0.5 to 64 GiB per vCPU, the range cloud VMs offer"
    )


def test_a_refused_default_in_settings_py_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "LOCAL_N_WORKERS", "many")
    with pytest.raises(SettingError) as refused:
        setting("LOCAL_N_WORKERS", {})
    assert str(refused.value) == (
        f"{variable('LOCAL_N_WORKERS')} (unset; the default in settings.py): 'many' is not a whole number from 1 to 64"
    )


@pytest.mark.parametrize("key", [key for key in SETTINGS if key != "RETRY_DELAY_SECONDS"])
def test_run_refuses_with_exit_2_and_the_variables_line(key: str, monkeypatch, capsys) -> None:
    """Nothing starts: the run stops at the line, before any cluster (RETRY_DELAY_SECONDS is read
    when the flows are imported: the next test starts a fresh interpreter for it)."""
    monkeypatch.setenv(variable(key), REFUSED.get(key, "-1"))
    backend = next((name for prefix, name in BACKEND_OF.items() if key.startswith(prefix)), "local")
    cluster = [] if key == "CLUSTER" else ["--cluster", backend]
    assert main(["run", next(iter(FLOWS)), *cluster]) == 2
    lines = capsys.readouterr().err.splitlines()
    shown = "the value (not shown" if key in SECRETS else repr(REFUSED.get(key, "-1"))
    assert len(lines) == 1 and lines[0].startswith(f"error: {variable(key)}: {shown}"), lines


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    typo = f"{ENV_PREFIX}COILED_WORKER_MEMROY"
    assert unknown_variables({typo: "8GiB", f"{ENV_PREFIX}COILED_N_WORKERS": "2", "PATH": "/bin"}, ENV_PREFIX) == [
        f"warning: {typo} is not a setting of this project and is ignored; "
        f"did you mean {ENV_PREFIX}COILED_WORKER_MEMORY?"
    ]


RUNNERS = ["run", "prefect run -p"]


def run_refused(runner: str, key: str, value: str) -> str:
    """The first flow run by ``runner`` with setting ``key`` at ``value``: it must exit 2 with one
    line and no traceback; that line."""
    flow = next(iter(FLOWS))
    command = (
        [sys.executable, "-m", PACKAGE, "run", flow]
        if runner == "run"
        else [sys.executable, "-m", "prefect", "run", "-p", FLOWS[flow].source]
    )
    env = project_env(**{variable("CLUSTER"): "local", variable(key): value})
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stderr.splitlines()[-1]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_retry_delay_refused_at_import_is_one_line_and_exit_2(runner: str) -> None:
    assert run_refused(runner, "RETRY_DELAY_SECONDS", "1e20") == (
        f"error: {variable('RETRY_DELAY_SECONDS')}: '1e20' is not a number of seconds from 0 to 3600"
    )


def test_a_setting_refused_when_prefect_runs_the_flow_file_is_one_line_and_exit_2() -> None:
    """As from the command line (above, in this process): the plan refuses it before any cluster."""
    assert run_refused("prefect run -p", "LOCAL_N_WORKERS", "abc") == (
        f"error: {variable('LOCAL_N_WORKERS')}: 'abc' is not a whole number from 1 to 64"
    )
