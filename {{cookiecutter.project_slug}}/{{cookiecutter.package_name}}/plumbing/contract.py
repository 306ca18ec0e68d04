"""The flow contract: what a module in ``flows/`` declares so the project can run it.

A flow module builds its flow inside ``with cluster_flow(name) as flow:`` and ends with
``FLOW = declare(flow, description=..., result=..., smoke=...)``. Everything else is
read off the flow itself: its parameters and their defaults are its ``Parameter``
tasks (``--param`` values take each default's type), and every task and edge comes
from the ``with`` block. ``declare`` checks the declaration when the module is
imported, so a broken flow fails on the author's first import, not on a user's run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import prefect
from prefect import Flow, Task
from prefect.engine.state import State

from .command import RESERVED, FlowCommand
from .estimate import Estimate, Estimator, Machine

Validator = Callable[[Mapping[str, Any]], None]

_declared: dict[str, FlowDeclaration] = {}


class FlowContractError(ValueError):
    """A flow module that does not declare a runnable flow; the message names it and says why."""


@dataclass(frozen=True)
class FlowDeclaration:
    """One flow of the project, as the command line, the runner and the tests see it."""

    flow: Flow
    description: str
    result: Task
    smoke: Mapping[str, Any]
    validate: Validator | None = None
    source: str = ""  # the file that declares the flow: what ``prefect run -p`` takes
    commands: Mapping[str, FlowCommand] = field(default_factory=dict)  # python -m <package> NAME
    estimate: Estimator | None = None

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

    def estimates(self, parameters: Mapping[str, Any], machine: Machine) -> list[Estimate]:
        """The flow's own sizes for ``parameters`` (defaults filled in) on ``machine``."""
        if self.estimate is None:
            return []
        return list(self.estimate({**self.defaults, **parameters}, machine))

    def run(self, parameters: Mapping[str, Any] | None = None) -> State:
        """Run the flow in this process, as ``flow.run`` does (the cluster is chosen when it starts)."""
        return self.flow.run(parameters=self.checked(parameters or {}))


def declare(
    flow: Flow,
    *,
    description: str,
    result: Task,
    smoke: Mapping[str, Any],
    validate: Validator | None = None,
    commands: Mapping[str, FlowCommand] | None = None,
    estimate: Estimator | None = None,
) -> FlowDeclaration:
    """Enter ``flow`` in the project.

    ``description``: one line for ``flows`` and ``--help``. ``result``: the task whose
    value a run prints. ``smoke``: the smallest parameters that run every task, used by
    the generic tests. ``validate``: raises ValueError for parameters that cannot work;
    it runs before any cluster starts, from the command line and under ``prefect run``.
    ``commands``: extra commands of the command line that belong to this flow
    (``python -m <package> NAME``), e.g. one that prepares its input data.
    ``estimate``: given the parameters and the ``Machine``, the run's sizes
    (``Estimate``: size, limit, advice); the command line refuses a local run over a
    limit unless ``--force`` is given (plumbing/estimate.py).
    """
    source = sys._getframe(1).f_globals.get("__file__", "")
    declaration = FlowDeclaration(
        flow, description, result, dict(smoke), validate, source, dict(commands or {}), estimate
    )
    where = f"flow {flow.name!r}"
    for name, command in declaration.commands.items():
        if name in RESERVED or not isinstance(command, FlowCommand):
            raise FlowContractError(f"{where}: command {name!r} must be a FlowCommand not named {', '.join(RESERVED)}")
    if not description.strip() or "\n" in description:
        raise FlowContractError(f"{where}: description must be one line of text")
    if result not in flow.tasks:
        raise FlowContractError(f"{where}: result {result!r} is not a task of the flow")
    for label, parameters in (("its defaults", {}), ("smoke", declaration.smoke)):
        try:
            declaration.checked(parameters)
        except ValueError as error:
            raise FlowContractError(f"{where}: {label} fail its own checks: {error}") from error
    _declared[flow.name] = declaration
    return declaration


def check_current_run() -> None:
    """Check the running flow's parameters; called before a cluster starts.

    ``prefect run -p`` reaches a flow without the command line's checks, so the cluster
    machinery checks again: parameters that cannot work never cost a cluster.
    """
    declaration = _declared.get(prefect.context.get("flow_name", ""))
    if declaration is not None:
        given = prefect.context.get("parameters", {})
        declaration.checked({key: value for key, value in given.items() if key in declaration.defaults})


def _name(parameter: Task) -> str:
    return parameter.name


def _check_type(key: str, value: Any, default: Any) -> None:
    """A value must have its default's type (a whole number is a fine float); a None default takes anything."""
    if default is None:
        return
    if isinstance(default, bool) or isinstance(value, bool):
        fits = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        fits = isinstance(value, (int, float))
    else:
        fits = isinstance(value, type(default))
    if not fits:
        raise ValueError(f"{key}: {value!r} is not of type {type(default).__name__}, as its default {default!r} is")
