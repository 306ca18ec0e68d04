"""The command line, run as a user would run it, for every flow in ``flows/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect.cli import cli as prefect_cli

from {{ cookiecutter.package_name }}.plumbing.cli import main, parse_params
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, smoke_args

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT
    )


def test_flows_lists_every_flow_with_its_description_and_defaults(capsys) -> None:
    assert main(["flows"]) == 0
    listing = capsys.readouterr().out
    for name, declaration in FLOWS.items():
        assert f"{name}\n    {declaration.description}\n    parameters: " in listing
        for key, value in declaration.defaults.items():
            assert f"{key}={value}" in listing


def test_run_help_lists_the_flows_and_their_parameters() -> None:
    done = cli("run", "--help")
    assert done.returncode == 0, done.stderr
    for name, declaration in FLOWS.items():
        assert name in done.stdout and declaration.description in done.stdout


@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_runs_from_the_command_line_and_prints_its_result_once(name: str, capsys) -> None:
    assert main(["run", name, "--cluster", "local", *smoke_args(FLOWS[name])]) == 0
    out = capsys.readouterr().out
    expected = str(FLOWS[name].run(FLOWS[name].smoke).result[FLOWS[name].result].result)
    assert out.startswith(f"{name}: Success\n") and out.count(expected) == 1, out


def test_a_run_logs_its_cluster_and_one_summary_line() -> None:
    name = next(iter(FLOWS))
    done = cli("run", name, *smoke_args(FLOWS[name]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("dashboard=") == 1 and done.stdout.count(f"flow={name} state=Success wall=") == 1


@pytest.mark.parametrize("name", FLOWS)
def test_a_failing_task_exits_1_naming_the_task(name: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    flow = FLOWS[name].flow
    last = FLOWS[name].result

    def broken(*args, **kwargs):
        raise ArithmeticError("injected: disk full")

    monkeypatch.setattr(last, "run", broken)
    assert main(["run", name, *smoke_args(FLOWS[name])]) == 1
    err = capsys.readouterr().err
    assert f"{name}: Failed: task {last.name!r} failed: ArithmeticError: injected: disk full" in err
    assert flow.get_tasks(name=last.name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "n"], "expected NAME=VALUE"),
        (["--param", "colour=red"], "--param colour: not a parameter"),
    ],
)
def test_malformed_params_exit_2(args: list[str], message: str, capsys) -> None:
    assert main(["run", next(iter(FLOWS)), *args]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_flow_exits_2_listing_the_flows(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "no-such-flow"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-flow'" in err and all(repr(name) in err for name in FLOWS)


def test_bad_cluster_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", "none")
    assert main(["run", next(iter(FLOWS))]) == 2
    assert f"{ENV_PREFIX}LOCAL_N_WORKERS: 'none' is not a whole number" in capsys.readouterr().err


def test_keep_on_the_local_cluster_exits_2(capsys) -> None:
    assert main(["run", next(iter(FLOWS)), "--cluster", "local", "--keep"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --keep: keeps Coiled clusters only; this run computes on the local cluster"
    ]


def test_param_values_take_the_type_of_their_default() -> None:
    defaults = {"n": 1, "start": "2000-01-01", "fast": False, "rate": 0.5}
    given = ["n=12", "start=2001", "fast=true", "rate=2"]
    assert parse_params(given, defaults) == {"n": 12, "start": "2001", "fast": True, "rate": 2}
    with pytest.raises(ValueError, match="--param n: 'ten' is not a whole number"):
        parse_params(["n=ten"], defaults)
    with pytest.raises(ValueError, match="--param fast: 'yes please' is not a JSON value"):
        parse_params(["fast=yes please"], defaults)


# ``prefect run -p`` is Prefect's own command, invoked in this process (a new
# interpreter per flow would add a second of imports each); the Ctrl-C tests run it
# as a real subprocess.
@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_file_runs_with_prefect_run(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(prefect_cli, ["run", "-p", FLOWS[name].source, *smoke_args(FLOWS[name])])
    assert done.exit_code == 0, done.output
    assert "Flow run succeeded" in done.output
