"""The command line, run as a user would run it: what tests/test_flows.py does not already prove.

``--param`` values are read by the rules settings follow (ASCII digits only, one line of
text, a long value cut in the message), on a flow written here with a parameter of
each type, so the rules are proved whatever flows the project has.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect.cli import cli as prefect_cli

from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, extra_flows, smoke_args, smoke_result

TYPED = "typed"
# A flow with one parameter of each type --param reads, whose result is what it was given.
TYPED_MODULE = f"""
from {PACKAGE}.plumbing import cluster_flow, declare
from prefect import Parameter, task


@task
def given(n, rate, freq, fast):
    return [n, rate, freq, fast]


with cluster_flow({TYPED!r}) as flow:
    result = given(
        Parameter("n", default=1), Parameter("rate", default=0.5), Parameter("freq", default="1h"),
        Parameter("fast", default=False),
    )

FLOW = declare(flow, description="returns its parameters", result=result, smoke=dict(n=2))
"""
NOT_WHOLE = "is not a whole number written in ASCII digits"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT
    )


@pytest.fixture
def typed_flow(tmp_path: Path) -> Iterator[str]:
    """The flow ``typed`` (TYPED_MODULE), found by the command line beside the project's own flows."""
    with extra_flows(tmp_path / "flows") as folder:
        (folder / "zz_typed.py").write_text(TYPED_MODULE)
        yield TYPED


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
def test_each_flow_runs_from_the_command_line_and_prints_its_result_once(name: str, tmp_path: Path, capsys) -> None:
    """What ``run`` prints is the flow's result, the same as a run in this process computes."""
    (tmp_path / "expected").mkdir()
    (tmp_path / "run").mkdir()
    expected = str(smoke_result(FLOWS[name], tmp_path / "expected"))
    capsys.readouterr()
    assert main(["run", name, "--cluster", "local", *smoke_args(FLOWS[name], tmp_path / "run")]) == 0
    assert capsys.readouterr().out == f"{name}: Success\n{expected}\n"


def test_a_run_logs_its_cluster_and_one_summary_line(tmp_path: Path) -> None:
    name = next(iter(FLOWS))
    done = cli("run", name, *smoke_args(FLOWS[name], tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("dashboard=") == 1, done.stdout
    assert done.stdout.count(f"flow={name} state=Success wall=") == 1, done.stdout


def test_param_values_take_the_type_of_their_default(typed_flow: str, capsys) -> None:
    given = ["--param", "n=-12", "--param", "rate=2", "--param", "freq=2001", "--param", "fast=true"]
    assert main(["run", typed_flow, *given]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == f"{typed_flow}: Success\n[-12, 2.0, '2001', True]\n"
    assert main(["run", typed_flow, "--param", "rate=2.5e-3", "--param", "freq=1 h", "--param", "fast=false"]) == 0
    assert capsys.readouterr().out == f"{typed_flow}: Success\n[1, 0.0025, '1 h', False]\n"


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("n=٣", f"--param n: '٣' {NOT_WHOLE}"),  # an Arabic-Indic digit: Python's int() would take it
        ("n=1_000", f"--param n: '1_000' {NOT_WHOLE}"),  # and this
        ("n=" + "9" * 4400, f"--param n: '{'9' * 57}...' {NOT_WHOLE}"),  # over Python's int() limit: cut
        ("n=2.0", f"--param n: '2.0' {NOT_WHOLE}"),
        ("rate=½", "--param rate: '½' is not a number written in ASCII digits"),
        ("rate=nan", "--param rate: 'nan' is not a number written in ASCII digits"),
        ("freq=1s\n1h", r"--param freq: '1s\n1h' contains a line break or control character"),
        ("freq=1h\x1b[2J", r"--param freq: '1h\x1b[2J' contains a line break or control character"),
        ("fast=yes please", "--param fast: 'yes please' is not a JSON value such as true, 2.5 or null"),
        ("fast=null", "fast: None is not of type bool, as its default False is"),
        ("n", "--param 'n': expected NAME=VALUE"),
        ("=3", "--param '=3': expected NAME=VALUE"),
        ("colour=red", "--param 'colour': not a parameter; choose from fast, freq, n, rate"),
        ("\x1b[2Jn=1", r"--param '\x1b[2Jn': not a parameter; choose from fast, freq, n, rate"),
    ],
    ids=[
        "arabic-indic digit", "underscore", "4400 digits", "decimal for a whole number", "vulgar fraction", "nan",
        "line break", "escape sequence", "not json", "null for a flag", "no value", "no name", "unknown", "escape in the name",
    ],
)  # fmt: skip
def test_a_param_that_breaks_the_rules_exits_2_with_one_line(pair: str, message: str, typed_flow: str, capsys) -> None:
    assert main(["run", typed_flow, "--param", pair]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: {message}"] and captured.out == ""


def test_an_unknown_flow_exits_2_listing_the_flows(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "no-such-flow"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-flow'" in err and all(repr(name) in err for name in FLOWS)


def test_bad_cluster_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_N_WORKERS", "none")
    assert main(["run", next(iter(FLOWS))]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {ENV_PREFIX}LOCAL_N_WORKERS: 'none' is not a whole number from 1 to 64"
    ]


def test_keep_on_the_local_cluster_exits_2(capsys) -> None:
    assert main(["run", next(iter(FLOWS)), "--cluster", "local", "--keep"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --keep: keeps Coiled clusters only; this run computes on the local cluster"
    ]


# ``prefect run -p`` is Prefect's own command, invoked in this process (a new
# interpreter per flow would add a second of imports each); the signal tests run it
# as a real subprocess.
@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_file_runs_with_prefect_run(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(prefect_cli, ["run", "-p", FLOWS[name].source, *smoke_args(FLOWS[name], tmp_path)])
    assert done.exit_code == 0, done.output
    assert "Flow run succeeded" in done.output
