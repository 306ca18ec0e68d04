"""The command line, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect.cli import cli as prefect_cli

from {{ cookiecutter.package_name }}.cli import main, parse_params
from {{ cookiecutter.package_name }}.flows import FLOWS, load_flow_module

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )


def test_flows_lists_every_flow_with_its_parameters(capsys) -> None:
    assert main(["flows"]) == 0
    listing = capsys.readouterr().out
    for name in FLOWS:
        assert name in listing
    assert "parameters:" in listing


{%- if cookiecutter.executor != "LocalExecutor" %}


def test_run_prints_state_and_result() -> None:
    done = cli("run", "inc-double-add-sum", "--cluster", "local", "--param", "n=5", "--param", "batch_size=2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["inc-double-add-sum: Success", "35"]
    assert "backend=local" in done.stdout and "wall=" in done.stdout  # Prefect logs to stdout


def test_a_failing_task_exits_1_naming_the_task(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    module = load_flow_module("inc-double-add-sum")

    def broken(batch):
        raise ArithmeticError("injected: disk full")

    [double] = module.flow.get_tasks(name="double")  # the flow holds a bound copy of the task
    monkeypatch.setattr(double, "run", broken)
    assert main(["run", "inc-double-add-sum", "--param", "n=3"]) == 1
    assert "task 'double' (map index 0) failed: ArithmeticError: injected: disk full" in capsys.readouterr().err
{%- endif %}
{%- if cookiecutter.executor != "DaskExecutor" %}


def test_timeseries_runs_from_the_command_line() -> None:
    done = cli("run", "timeseries", "--param", "end=2000-01-02", "--param", "partition_freq=6h")
    assert done.returncode == 0, done.stderr
    assert "timeseries: Success" in done.stdout and "x_mean" in done.stdout
    assert "dashboard=" in done.stdout


def test_bad_parameter_exits_2_before_any_cluster_starts(capsys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="prefect")
    assert main(["run", "timeseries", "--param", "freq=1H"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("error: freq: '1H' is not a frequency pandas accepts")
    assert "dashboard=" not in caplog.text
{%- endif %}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "n"], "expected NAME=VALUE"),
        (["--param", "colour=red"], "--param colour: not a parameter"),
    ],
)
def test_malformed_params_exit_2(args: list[str], message: str, capsys) -> None:
    flow = next(iter(FLOWS))
    assert main(["run", flow, *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_cluster_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from {{ cookiecutter.package_name }} import ENV_PREFIX

    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", "none")
    flow = next(iter(FLOWS))
    assert main(["run", flow]) == 2
    assert f"{ENV_PREFIX}LOCAL_N_WORKERS: 'none' is not a whole number" in capsys.readouterr().err


def test_param_values_take_the_type_of_their_default() -> None:
    assert parse_params(["n=12", "start=2001"], {"n": 1, "start": "2000-01-01"}) == {"n": 12, "start": "2001"}
    with pytest.raises(ValueError, match="--param n: 'ten' is not a whole number"):
        parse_params(["n=ten"], {"n": 1})


# ``prefect run -p`` is Prefect's own command, invoked in this process (a new
# interpreter per flow would add a second of imports each); the Ctrl-C tests run it
# as a real subprocess.
@pytest.mark.parametrize("flow_file", sorted(FLOWS))
def test_each_flow_file_runs_with_prefect_run(flow_file: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = Path(load_flow_module(flow_file).__file__)
    extra = ["--param", "n=4"] if flow_file == "inc-double-add-sum" else ["--param", "end=2000-01-02"]
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(prefect_cli, ["run", "-p", str(path), *extra])
    assert done.exit_code == 0, done.output
    assert "Flow run succeeded" in done.output
