"""The flow contract: what ``declare`` accepts, how discovery reports a flow module it cannot use, the
commands a flow adds, and smoke parameters made by a function of a folder."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import Flow, Parameter, task

from {{ cookiecutter.package_name }}.plumbing import FlowCommand, FlowContractError, cluster_flow, declare
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.contract import RESERVED, find_flows
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

import flowkit
from flowkit import FLOWS, PACKAGE, extra_flows, smoke_args

CLOSED = " closed transitions="  # the session's log line once a cluster is closed


@task
def double(x: int) -> int:
    return 2 * x


def tiny_flow(name: str = "tiny"):
    with cluster_flow(name) as flow:
        result = double(Parameter("x", default=1))
    return flow, result


def positive(parameters) -> None:
    if parameters["x"] <= 0:
        raise ValueError(f"x: {parameters['x']!r} is not positive")


def test_a_declaration_reads_parameters_and_defaults_off_the_flow() -> None:
    flow, result = tiny_flow()
    declaration = declare(flow, description="double x", result=result, smoke={"x": 2}, validate=positive)
    assert (declaration.name, declaration.defaults, declaration.source) == ("tiny", {"x": 1}, __file__)
    assert flow.declaration is declaration and declaration.smoke_parameters(Path("unused")) == {"x": 2}
    assert declaration.run({"x": 3}).result[result].result == 6


def a_command() -> FlowCommand:
    return FlowCommand(help="does nothing", arguments=lambda parser: None, run=lambda args, plan: "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"description": ""}, "description must be one line of text"),
        ({"description": "two\nlines"}, "description must be one line of text"),
        ({"smoke": dict(y=1)}, "smoke fail its own checks: y: not a parameter of tiny; choose from x"),
        ({"smoke": dict(x="one")}, "smoke fail its own checks: x: 'one' is not of type int"),
        ({"smoke": dict(x=-1)}, "smoke fail its own checks: x: -1 is not positive"),
        ({"smoke": dict(x="1\n2")}, r"smoke fail its own checks: x: '1\n2' contains a line break or control"),
        ({"result": double}, "is not a task of the flow"),
        ({"commands": dict(serve=a_command())}, f"command 'serve' must be a FlowCommand not named {', '.join(RESERVED)}"),
        ({"commands": dict(go="go")}, "command 'go' must be a FlowCommand not named"),
    ],
    ids=[
        "no description", "two lines", "unknown smoke", "mistyped smoke", "smoke invalid", "control character",
        "result elsewhere", "reserved command", "not a command",
    ],
)  # fmt: skip
def test_a_broken_declaration_fails_when_its_module_is_imported(change: dict, message: str) -> None:
    flow, result = tiny_flow()
    arguments = {"description": "double x", "result": result, "smoke": {}, "validate": positive, **change}
    with pytest.raises(FlowContractError, match=re.escape(message)):
        declare(flow, **arguments)


def test_a_flow_must_be_built_with_cluster_flow() -> None:
    """A plain Prefect ``Flow`` would run without the run plan, so with no cluster closed for it."""
    with Flow("plain") as flow:
        result = double(Parameter("x", default=1))
    with pytest.raises(FlowContractError, match=re.escape("flow 'plain': build it with `with cluster_flow(name) as")):
        declare(flow, description="double x", result=result, smoke={})


def test_a_callable_smoke_is_not_called_when_the_flow_is_declared() -> None:
    """Only a test calls it, with a folder of its own: importing a flow writes no file."""
    calls: list[Path] = []
    flow, result = tiny_flow()
    declaration = declare(flow, description="double x", result=result, smoke=lambda folder: calls.append(folder) or {})
    assert calls == []
    assert declaration.smoke_parameters(Path("somewhere")) == {} and calls == [Path("somewhere")]


@pytest.mark.parametrize(("value", "accepted"), [(2, True), (2.5, False), (True, False), ("2", False)])
def test_parameter_values_keep_their_default_type(value: object, accepted: bool) -> None:
    flow, result = tiny_flow()
    declaration = declare(flow, description="double x", result=result, smoke={})
    if accepted:
        assert declaration.checked({"x": value}) == {"x": value}
    else:
        with pytest.raises(ValueError, match=r"^x: .* is not of type int, as its default 1 is$"):
            declaration.checked({"x": value})


@pytest.fixture
def flows_folder(tmp_path: Path) -> Iterator[Path]:
    """A second folder of the ``flows`` package, for flow modules written by a test."""
    with extra_flows(tmp_path / "flows") as folder:
        yield folder


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_module\n", "flows/broken.py cannot be imported: ModuleNotFoundError: No module named"),
        ("FLOW = 'squares'\n", "flows/broken.py: FLOW must be the result of declare(...), not str"),
        (
            f"from prefect import Flow, task\nfrom {PACKAGE}.plumbing import declare\n\n"
            "@task\ndef one() -> int:\n    return 1\n\n"
            "with Flow('plain') as flow:\n    result = one()\n\n"
            "FLOW = declare(flow, description='plain', result=result, smoke=dict())\n",
            "flow 'plain': build it with `with cluster_flow(name) as flow:`",
        ),
    ],
    ids=["import error", "not a declaration", "plain prefect flow"],
)
def test_a_broken_flow_module_stops_the_command_line_with_one_line(
    source: str, message: str, flows_folder: Path, capsys
) -> None:
    (flows_folder / "broken.py").write_text(source)
    with pytest.raises(FlowContractError, match=re.escape(message)):
        find_flows()
    assert main(["flows"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {message}")


def test_two_modules_may_not_declare_one_name(flows_folder: Path) -> None:
    name = next(iter(FLOWS))
    (flows_folder / "zz_copy.py").write_text(
        f"from {PACKAGE}.plumbing import cluster_flow, declare\n"
        "from prefect import task\n\n"
        "@task\ndef one() -> int:\n    return 1\n\n"
        f"with cluster_flow({name!r}) as flow:\n    result = one()\n\n"
        "FLOW = declare(flow, description='a copy', result=result, smoke=dict())\n"
    )
    with pytest.raises(
        FlowContractError, match=f"flows/zz_copy.py: another module already declares a flow named {name!r}"
    ):
        find_flows()


def test_modules_without_flow_are_helpers_and_private_ones_are_skipped(flows_folder: Path) -> None:
    (flows_folder / "helper.py").write_text("VALUE = 1\n")
    (flows_folder / "_private.py").write_text("raise RuntimeError('never imported')\n")
    assert list(find_flows()) == list(FLOWS)


def module_with_command(flow_name: str, command: str) -> str:
    """A flow module that adds ``command``: it sums ``range(N)`` on the cluster its plan chose."""
    return (
        f"from {PACKAGE}.plumbing import FlowCommand, cluster_client, cluster_flow, declare\n"
        "from prefect import task\n\n"
        "@task\ndef one() -> int:\n    return 1\n\n"
        "def arguments(parser):\n    parser.add_argument('n', type=int)\n\n"
        "def run(args, plan):\n"
        "    if args.n < 0:\n        raise ValueError(f'N: {args.n} is negative')\n"
        "    with cluster_client(plan) as client:\n"
        "        total = client.submit(sum, range(args.n)).result()\n"
        "    return f'sum {total} on the {plan.backend} cluster of {plan.flow}'\n\n"
        f"with cluster_flow({flow_name!r}) as flow:\n    result = one()\n\n"
        "FLOW = declare(flow, description='one', result=result, smoke=dict(), "
        f"commands=dict([({command!r}, FlowCommand(help='sum range(N)', arguments=arguments, run=run))]))\n"
    )


def test_a_flow_adds_a_command_that_computes_on_the_chosen_cluster(
    flows_folder: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=PACKAGE)  # a command's session logs under the package's name
    (flows_folder / "zz_summing.py").write_text(module_with_command("summing", "sum-range"))
    assert main(["sum-range", "5", "--cluster", "local"]) == 0
    assert capsys.readouterr().out == "sum 10 on the local cluster of sum-range\n"
    assert caplog.text.count("dashboard=") == caplog.text.count(CLOSED) == 1, caplog.text
    assert main(["sum-range", "-1"]) == 2
    assert capsys.readouterr().err == "error: N: -1 is negative\n"
    assert main(["sum-range", "1", "--cluster", "nowhere"]) == 2
    assert capsys.readouterr().err.startswith("error: --cluster: 'nowhere' is not allowed; choose one of local, ")
    assert caplog.text.count("dashboard=") == 1, "a refused command started a cluster"


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"zz_a": ("a", "run")}, f"flow 'a': command 'run' must be a FlowCommand not named {', '.join(RESERVED)}"),
        ({"zz_a": ("a", "same"), "zz_b": ("b", "same")}, "flows/zz_b.py: another flow already adds a command named"),
    ],
    ids=["a built-in name", "twice"],
)
def test_a_command_may_not_shadow_another(modules: dict, message: str, flows_folder: Path) -> None:
    for module, (flow_name, command) in modules.items():
        (flows_folder / f"{module}.py").write_text(module_with_command(flow_name, command))
    with pytest.raises(FlowContractError, match=re.escape(message)):
        find_flows()


READING = "reading"
# A flow that reads a file, so its smoke parameters are a function that writes one in the folder it is given.
READING_MODULE = f"""
from pathlib import Path

from prefect import Parameter, task

from {PACKAGE}.plumbing import DaskCluster, cluster_flow, declare


@task
def count_lines(path, client):
    return client.submit(len, Path(path).read_text().splitlines()).result()


with cluster_flow({READING!r}) as flow:
    path = Parameter("path", default="input.txt")
    with DaskCluster() as client:
        lines = count_lines(path, client)


def smoke(folder):
    (folder / "input.txt").write_text("one\\ntwo\\nthree\\n")
    return dict(path=str(folder / "input.txt"))


FLOW = declare(flow, description="counts a file's lines on the cluster", result=lines, smoke=smoke)
"""


@pytest.fixture
def reading_flow(flows_folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The flow ``reading`` (READING_MODULE), one of the flows the generic tests are given."""
    (flows_folder / "zz_reading.py").write_text(READING_MODULE)
    monkeypatch.setitem(flowkit.FLOWS, READING, find_flows()[READING])
    return READING


def test_a_callable_smoke_makes_its_files_in_the_folder_it_is_given(reading_flow: str, tmp_path: Path) -> None:
    declaration = FLOWS[reading_flow]
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    assert smoke_args(declaration, first) == ["--param", f"path={first / 'input.txt'}"]
    assert declaration.smoke_parameters(second) == {"path": str(second / "input.txt")}
    assert (first / "input.txt").read_text() == (second / "input.txt").read_text() == "one\ntwo\nthree\n"


def test_the_generic_tests_run_a_flow_with_a_callable_smoke_in_a_fresh_folder(
    reading_flow: str,
    tmp_path: Path,
    webhook: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """tests/test_flows.py's own tests, given the flow and a fresh folder each (pytest gives them ``tmp_path``),
    each with a run history of its own (as their ``history`` fixture gives them)."""
    import test_flows

    ran, failed = tmp_path / "ran", tmp_path / "failed"
    for folder in (ran, failed):
        folder.mkdir()
    monkeypatch.setenv(f"{ENV_PREFIX}HISTORY", str(ran / "runs.sqlite"))
    test_flows.test_each_flow_runs_from_the_command_line_and_prints_its_result(
        reading_flow, ran, ran / "runs.sqlite", webhook, capsys, caplog
    )
    assert (ran / "input.txt").is_file() and not (failed / "input.txt").exists()
    caplog.clear()
    monkeypatch.setenv(f"{ENV_PREFIX}HISTORY", str(failed / "runs.sqlite"))
    test_flows.test_a_failing_task_fails_the_run_naming_itself_and_closes_the_cluster(
        reading_flow, failed, failed / "runs.sqlite", webhook, monkeypatch, capsys, caplog
    )
    assert (failed / "input.txt").is_file()
