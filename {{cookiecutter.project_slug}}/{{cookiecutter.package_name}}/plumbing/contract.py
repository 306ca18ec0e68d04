"""The flow contract: what a module in ``flows/`` declares so the project can run it, and how it is found.

A flow module builds its flow inside ``with cluster_flow(name) as flow:`` and ends with
``FLOW = declare(flow, description=..., result=..., smoke=...)`` (``keep=[task]`` names the
costly tasks whose results a later ``run --resume`` restores: ``results.py``). Everything else is
read off the flow itself: its parameters and their defaults are its ``Parameter``
tasks (``--param`` values take each default's type), and every task and edge comes
from the ``with`` block. ``declare`` checks the declaration when the module is
imported, so a broken flow fails on the author's first import, not on a user's run.

Every module in ``flows/`` that sets ``FLOW`` is a flow: adding a flow is adding a file,
and deleting an example is deleting its files; nothing else names them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

from prefect import Flow, Task
from prefect.engine.state import State
from prefect.utilities.logging import get_logger

from .. import flows as flows_package
from .plan import Estimator, Machine, RunPlan
from .results import checked_keep, keep_results_of
from .rules import CONTROL, SettingError, shown

Validator = Callable[[Mapping[str, Any]], None]
# Smoke parameters, or a function that makes them from a fresh folder (for flows that read files).
Smoke = Union[Mapping[str, Any], Callable[[Path], Mapping[str, Any]]]  # noqa: UP007 - an alias, evaluated on 3.9
RESERVED = ("flows", "run", "serve", "runs", "results", "diagram", "doctor", "clusters")  # the CLI's own commands
WHOLE = re.compile(r"-?[0-9]{1,30}")  # ASCII digits only: no other script's digits, no 1_000
DECIMAL = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,3})?")


class FlowContractError(ValueError):
    """A flow module that does not declare a runnable flow; the message names it and says why."""


@dataclass(frozen=True)
class FlowCommand:
    """A command a flow adds to the command line (``python -m <package> NAME``), e.g. one that prepares
    its input data: ``arguments`` adds its options to its parser, ``run`` does the work with the
    command line's arguments and the command's plan (where it computes: ``cluster_client(plan)``)
    and returns a line to print. ``run`` raises ValueError for arguments that cannot work (exit 2,
    before any cluster starts if it checks them first); anything else it raises exits 1.
    """

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, RunPlan], str]


@contextmanager
def cluster_client(plan: RunPlan) -> Iterator[Any]:
    """A client of the cluster ``plan`` chose, closed when the block ends, however it ends."""
    from .session import ClusterSession, stop_if_scheduler_lost

    session = ClusterSession(plan, get_logger(plan.flow))
    try:
        yield session.open()
    except Exception:
        stop_if_scheduler_lost()  # one line and exit 1 when its scheduler went away
        raise
    finally:
        session.close()


@dataclass(frozen=True)
class FlowDeclaration:
    """One flow of the project, as the command line, the runner and the tests see it."""

    flow: Flow
    description: str
    result: Task
    smoke: Smoke
    validate: Validator | None = None
    source: str = ""  # the file that declares the flow: what ``prefect run -p`` takes
    commands: Mapping[str, FlowCommand] = field(default_factory=dict)
    estimate: Estimator | None = None
    keep: tuple[Task, ...] = ()  # tasks whose results are kept for ``run --resume``

    @property
    def name(self) -> str:
        return self.flow.name

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter and its default, by name."""
        return {parameter.name: parameter.default for parameter in sorted(self.flow.parameters(), key=_name)}

    def checked(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """``parameters`` if a run could take them; else ValueError naming the first bad one."""
        defaults = self.defaults
        for key, value in parameters.items():
            if key not in defaults:
                raise ValueError(f"{key}: not a parameter of {self.name}; choose from {', '.join(defaults) or 'none'}")
            _check_type(key, value, defaults[key])
        if self.validate is not None:
            self.validate({**defaults, **parameters})
        return dict(parameters)

    def parsed(self, pairs: list[str]) -> dict[str, Any]:
        """``NAME=VALUE`` texts from the command line, each value read as its default's type."""
        defaults = self.defaults
        parameters: dict[str, Any] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            if not sep or not name:
                raise ValueError(f"--param {shown(pair)}: expected NAME=VALUE")
            if name not in defaults:
                raise ValueError(f"--param {shown(name)}: not a parameter; choose from {', '.join(defaults)}")
            parameters[name] = _read_value(name, text, defaults[name])
        return parameters

    def smoke_parameters(self, folder: Path) -> dict[str, Any]:
        """The smallest parameters that run every task; a flow that reads files makes them in ``folder``."""
        return dict(self.smoke(folder) if callable(self.smoke) else self.smoke)

    def estimates(self, parameters: Mapping[str, Any], machine: Machine) -> list[Any]:
        """The flow's own sizes for ``parameters`` (defaults filled in) on ``machine``."""
        if self.estimate is None:
            return []
        return list(self.estimate({**self.defaults, **parameters}, machine))

    def run(self, parameters: Mapping[str, Any] | None = None) -> State:
        """Run the flow in this process, as ``flow.run`` does (the cluster is chosen when it starts)."""
        return self.flow.run(parameters=dict(parameters or {}))


def declare(
    flow: Flow,
    *,
    description: str,
    result: Task,
    smoke: Smoke,
    validate: Validator | None = None,
    commands: Mapping[str, FlowCommand] | None = None,
    estimate: Estimator | None = None,
    keep: Iterable[Task] = (),
) -> FlowDeclaration:
    """Enter ``flow`` in the project.

    ``description``: one line for ``flows`` and ``--help``. ``result``: the task whose
    value a run prints. ``smoke``: the smallest parameters that run every task, used by
    the generic tests; a flow that reads files gives a function instead, which writes
    small input files into the folder it is given and returns the parameters that read them.
    ``validate``: raises ValueError for parameters that cannot work; it runs before any
    cluster starts, from the command line and under ``prefect run``.
    ``commands``: extra commands of the command line that belong to this flow
    (``python -m <package> NAME``), e.g. one that prepares its input data.
    ``estimate``: given the parameters and the ``Machine``, the run's sizes
    (``Estimate``: size, limit, advice); the command line refuses a local run over a
    limit unless ``--force`` is given (plumbing/plan.py).
    ``keep``: tasks whose results every run writes to ``<PREFIX>_RESULTS`` and ``run
    --resume`` restores instead of computing, such as a summary computed on a cluster
    (docs/resume.md). Keep the costly ones: a run whose cluster work is all restored
    starts no cluster.
    """
    from .run import ClusterFlow

    source = sys._getframe(1).f_globals.get("__file__", "")
    declaration = FlowDeclaration(
        flow, description, result, smoke if callable(smoke) else dict(smoke), validate, source, dict(commands or {}),
        estimate,
    )  # fmt: skip
    where = f"flow {flow.name!r}"
    if not isinstance(flow, ClusterFlow):
        raise FlowContractError(f"{where}: build it with `with cluster_flow(name) as flow:`")
    for name, command in declaration.commands.items():
        if name in RESERVED or not isinstance(command, FlowCommand):
            raise FlowContractError(f"{where}: command {name!r} must be a FlowCommand not named {', '.join(RESERVED)}")
    if not description.strip() or "\n" in description:
        raise FlowContractError(f"{where}: description must be one line of text")
    if result not in flow.tasks:
        raise FlowContractError(f"{where}: result {result!r} is not a task of the flow")
    try:
        declaration = replace(declaration, keep=checked_keep(flow, keep))
    except ValueError as error:
        raise FlowContractError(f"{where}: {error}") from None
    checks = [("its defaults", {})] + ([] if callable(smoke) else [("smoke", declaration.smoke)])
    for label, parameters in checks:
        try:
            declaration.checked(parameters)
        except ValueError as error:
            raise FlowContractError(f"{where}: {label} fail its own checks: {error}") from error
    keep_results_of(declaration.keep)
    flow.declaration = declaration
    return declaration


def find_flows() -> dict[str, FlowDeclaration]:
    """Every declared flow by name, in the order of their module names.

    Raises FlowContractError for a module that breaks the contract or cannot be imported,
    and SettingError, with the variable's own line, for a setting read at import.
    """
    found: dict[str, FlowDeclaration] = {}
    for info in sorted(pkgutil.iter_modules(flows_package.__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        where = f"flows/{info.name}.py"
        try:
            module = importlib.import_module(f"{flows_package.__name__}.{info.name}")
        except (FlowContractError, SettingError):  # their message already says what to fix
            raise
        except Exception as error:
            raise FlowContractError(f"{where} cannot be imported: {type(error).__name__}: {error}") from error
        declaration = getattr(module, "FLOW", None)
        if declaration is None:
            continue
        if not isinstance(declaration, FlowDeclaration):
            raise FlowContractError(
                f"{where}: FLOW must be the result of declare(...), not {type(declaration).__name__}"
            )
        if declaration.name in found:
            raise FlowContractError(f"{where}: another module already declares a flow named {declaration.name!r}")
        taken = {command for other in found.values() for command in other.commands}
        clash = sorted(taken & set(declaration.commands))
        if clash:
            raise FlowContractError(f"{where}: another flow already adds a command named {clash[0]!r}")
        found[declaration.name] = declaration
    return found


def find_flow(name: str) -> FlowDeclaration:
    """The flow called ``name``; FlowContractError naming the choices if there is none."""
    flows = find_flows()
    if name not in flows:
        raise FlowContractError(f"unknown flow {name!r}; choose one of {', '.join(flows) or '(none declared)'}")
    return flows[name]


def _name(parameter: Task) -> str:
    return parameter.name


def _read_value(name: str, text: str, default: Any) -> Any:
    """A command line value in its default's type, by the rules settings follow: ASCII digits, one line."""
    if CONTROL.search(text):
        raise ValueError(f"--param {name}: {shown(text)} contains a line break or control character")
    if isinstance(default, str):
        return text
    if isinstance(default, bool) or default is None or not isinstance(default, (int, float)):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"--param {name}: {shown(text)} is not a JSON value such as true, 2.5 or null") from None
    if isinstance(default, int) and WHOLE.fullmatch(text):
        return int(text)
    if isinstance(default, float) and DECIMAL.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    kind = "whole number" if isinstance(default, int) else "number"
    raise ValueError(f"--param {name}: {shown(text)} is not a {kind} written in ASCII digits")


def _check_type(key: str, value: Any, default: Any) -> None:
    """A value must have its default's type (a whole number is a fine float); a None default takes anything.
    Text takes no line break or control character: it lands in paths, log lines and file names."""
    if isinstance(value, str) and CONTROL.search(value):
        raise ValueError(f"{key}: {shown(value)} contains a line break or control character")
    if default is None:
        return
    if isinstance(default, bool) or isinstance(value, bool):
        fits = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        fits = isinstance(value, (int, float))
    else:
        fits = isinstance(value, type(default))
    if not fits:
        raise ValueError(
            f"{key}: {shown(value)} is not of type {type(default).__name__}, as its default {shown(default)} is"
        )
