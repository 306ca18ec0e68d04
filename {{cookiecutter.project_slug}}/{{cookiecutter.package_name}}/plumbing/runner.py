"""Run a flow by name and turn its final state into a result or a readable failure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.engine.state import State, TriggerFailed
from prefect.utilities.logging import get_logger

from .choices import KEEP, REPORT
from .clusters import ClusterSpec, chosen_backend, cluster_spec, resolve_backend
from .contract import FlowDeclaration
from .estimate import Machine, check, layout_estimates, retry_wait_estimate
from .inside import checked_report_path
from .registry import find_flow
from .session import close_sessions


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its state, the flow's result, and why it failed, if it did."""

    state: State
    result: Any
    failure: str | None


def run_flow(
    name: str,
    backend: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    force: bool = False,
    keep: bool = False,
    report: Path | None = None,
) -> RunOutcome:
    """Check the parameters, settings and sizes, run the flow, and close any cluster it left open.

    ``keep`` keeps a Coiled cluster running for the next run; ``report`` is where Dask's
    performance report of the run goes. Raises ValueError (FlowContractError,
    ClusterConfigError, TooBig, a refused ``keep`` or ``report``) before any cluster starts.
    """
    declaration = find_flow(name)
    parameters = declaration.checked(parameters or {})
    backend = resolve_backend(backend)
    if keep and backend != "coiled":
        raise ValueError(f"--keep: keeps Coiled clusters only; this run computes on the {backend} cluster")
    checked_report_path(report)
    preflight(declaration, parameters, cluster_spec(backend, name), force)  # bad settings fail here, not mid-run
    with chosen_backend(backend), KEEP.chosen(keep), REPORT.chosen(report):
        try:
            state = declaration.flow.run(parameters=parameters)
        finally:
            close_sessions()  # a Ctrl-C skips the flow's own cleanup and its state handlers
    if state.is_successful():
        return RunOutcome(state, state.result[declaration.result].result, None)
    return RunOutcome(state, None, failure_message(state, declaration.flow))


def preflight(declaration: FlowDeclaration, parameters: Mapping[str, Any], spec: ClusterSpec, force: bool) -> None:
    """Log the run's sizes; refuse a local run over a limit of this machine unless forced."""
    machine = Machine.here()
    estimates = [*declaration.estimates(parameters, machine), retry_wait_estimate(declaration.flow, machine)]
    local = spec.backend == "local"
    if local:
        estimates += layout_estimates(spec.kwargs, machine)
    check(estimates, local=local, force=force, logger=get_logger("estimate"), flow_name=declaration.name)


def failure_message(state: State, flow: Flow) -> str:
    """Name the first task, in the flow's order, that failed, and quote its error.

    Knock-on failures (tasks whose upstream failed) are skipped: they say nothing new.
    A task with retries says how many attempts it had, so a user knows the error was
    not a passing glitch.
    """
    task_states = state.result if isinstance(state.result, dict) else {}
    for task in flow.sorted_tasks():
        for index, child in _with_map_children(task_states.get(task)):
            if child.is_failed() and not isinstance(child, TriggerFailed):
                where = f"task {task.name!r}" + (f" (map index {index})" if index is not None else "")
                attempts = f" ({task.max_retries + 1} attempts)" if task.max_retries else ""
                return f"{where} failed: {_reason(child)}{attempts}"
    return f"flow failed: {state.message}"


def _with_map_children(task_state: State | None) -> list[tuple[int | None, State]]:
    if task_state is None:
        return []
    children = getattr(task_state, "map_states", None) or []
    return [(None, task_state), *enumerate(children)]


def _reason(task_state: State) -> str:
    error = task_state.result
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(task_state.message)
