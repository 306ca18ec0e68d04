"""Run a flow by name and turn its final state into a result or a readable failure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect.engine.state import State, TriggerFailed

from {{ cookiecutter.package_name }}.clusters import cluster_spec, resolve_backend
from {{ cookiecutter.package_name }}.flows import load_flow_module
{%- if cookiecutter.executor != "DaskExecutor" %}
from {{ cookiecutter.package_name }}.session import close_all_sessions
{%- endif %}


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its state, the flow's result, and why it failed, if it did."""

    state: State
    result: Any
    failure: str | None


def default_parameters(name: str) -> dict[str, Any]:
    """The flow's parameters and their defaults, as the CLI shows and types them."""
    return dict(load_flow_module(name).DEFAULTS)


def run_flow(name: str, backend: str | None = None, parameters: Mapping[str, Any] | None = None) -> RunOutcome:
    """Validate the parameters, run the flow, and close any cluster it left open.

    Raises ValueError for bad parameters or cluster settings before any cluster starts.
    """
    module = load_flow_module(name)
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(module.DEFAULTS))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a parameter of {name}; choose from {', '.join(module.DEFAULTS)}")
    module.validate_parameters(parameters)
    cluster_spec(resolve_backend(backend), module.FLOW_NAME)  # bad cluster settings fail here, not mid-run
{%- if cookiecutter.executor != "DaskExecutor" %}
    try:
        state = module.run(backend, parameters)
    finally:
        close_all_sessions()  # a Ctrl-C skips the flow's own cleanup task
{%- else %}
    state = module.run(backend, parameters)
{%- endif %}
    if state.is_successful():
        return RunOutcome(state, state.result[module.RESULT_TASK].result, None)
    return RunOutcome(state, None, failure_message(state))


def failure_message(state: State) -> str:
    """Name the task that failed first and quote its error, skipping knock-on failures."""
    task_states = state.result if isinstance(state.result, dict) else {}
    for task, task_state in task_states.items():
        for index, child in _with_map_children(task_state):
            if child.is_failed() and not isinstance(child, TriggerFailed):
                where = f"task {task.name!r}" + (f" (map index {index})" if index is not None else "")
                return f"{where} failed: {_reason(child)}"
    return f"flow failed: {state.message}"


def _with_map_children(task_state: State) -> list[tuple[int | None, State]]:
    children = getattr(task_state, "map_states", None) or []
    return [(None, task_state), *enumerate(children)]


def _reason(task_state: State) -> str:
    error = task_state.result
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(task_state.message)
