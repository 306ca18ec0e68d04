"""The flow contract: what ``declare`` accepts, and how discovery reports a flow module it cannot use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prefect import Parameter, task

from {{ cookiecutter.package_name }}.plumbing import FlowContractError, cluster_flow, contract, declare
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.registry import find_flows

from flowkit import FLOWS, PACKAGE


@pytest.fixture(autouse=True)
def declarations_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flows declared here must not stand in for the project's own in later tests."""
    monkeypatch.setattr(contract, "_declared", dict(contract._declared))


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
    assert declaration.run({"x": 3}).result[result].result == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"description": ""}, "description must be one line of text"),
        ({"description": "two\nlines"}, "description must be one line of text"),
        ({"smoke": dict(y=1)}, "smoke fail its own checks: y: not a parameter of tiny; choose from x"),
        ({"smoke": dict(x="one")}, "smoke fail its own checks: x: 'one' is not of type int"),
        ({"smoke": dict(x=-1)}, "smoke fail its own checks: x: -1 is not positive"),
        ({"result": double}, "is not a task of the flow"),
    ],
)
def test_a_broken_declaration_fails_when_its_module_is_imported(change: dict, message: str) -> None:
    flow, result = tiny_flow()
    arguments = {"description": "double x", "result": result, "smoke": {}, "validate": positive, **change}
    with pytest.raises(FlowContractError, match=message):
        declare(flow, **arguments)


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
def flows_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A second folder of the ``flows`` package, for flow modules written by a test."""
    import importlib

    package = importlib.import_module(f"{PACKAGE}.flows")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    return tmp_path


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_module\n", "flows/broken.py cannot be imported: ModuleNotFoundError: No module named"),
        ("FLOW = 'squares'\n", "flows/broken.py: FLOW must be the result of declare(...), not str"),
    ],
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
        "FLOW = declare(flow, description='a copy', result=result, smoke={})\n"
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
    """A flow module that adds ``command``: it sums ``range(N)`` on a cluster of the chosen backend."""
    return (
        f"from {PACKAGE}.plumbing import FlowCommand, cluster_client, cluster_flow, declare\n"
        "from prefect import task\n\n"
        "@task\ndef one() -> int:\n    return 1\n\n"
        "def arguments(parser):\n    parser.add_argument('n', type=int)\n\n"
        "def run(args):\n"
        "    if args.n < 0:\n        raise ValueError(f'N: {args.n} is negative')\n"
        f"    with cluster_client({command!r}) as client:\n"
        "        return f'sum {client.submit(sum, range(args.n)).result()}'\n\n"
        f"with cluster_flow({flow_name!r}) as flow:\n    result = one()\n\n"
        "FLOW = declare(flow, description='one', result=result, smoke={}, "
        f"commands=dict([({command!r}, FlowCommand(help='sum range(N)', arguments=arguments, run=run))]))\n"
    )


def test_a_flow_adds_a_command_that_computes_on_the_chosen_cluster(flows_folder: Path, capsys) -> None:
    (flows_folder / "zz_summing.py").write_text(module_with_command("summing", "sum-range"))
    assert main(["sum-range", "5", "--cluster", "local"]) == 0
    assert capsys.readouterr().out == "sum 10\n"
    assert main(["sum-range", "-1"]) == 2
    assert capsys.readouterr().err == "error: N: -1 is negative\n"


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"zz_a": ("a", "run")}, "flow 'a': command 'run' must be a FlowCommand not named flows, run, diagram, doctor"),
        ({"zz_a": ("a", "same"), "zz_b": ("b", "same")}, "flows/zz_b.py: another flow already adds a command named"),
    ],
    ids=["a built-in name", "twice"],
)
def test_a_command_may_not_shadow_another(modules: dict, message: str, flows_folder: Path) -> None:
    for module, (flow_name, command) in modules.items():
        (flows_folder / f"{module}.py").write_text(module_with_command(flow_name, command))
    with pytest.raises(FlowContractError, match=re.escape(message)):
        find_flows()
