"""A flow run from its plan to its end: ``ClusterFlow``, the Prefect ``Flow`` every flow of the project is.

Every way of starting a flow goes through ``ClusterFlow.run``: the command line (with
the plan it made), ``prefect run -p`` and a notebook's ``flow.run()`` (a plan made here,
from the environment, whose refusals end the process with one line, as the command
line's do). The run is one pass of Prefect's own ``Flow.run`` with the plan in its
context, never on the flow's schedule (``serve`` keeps schedules); however it ends, its
clusters are closed before ``run`` returns or raises, and it ends with one summary line.
Before Prefect starts, a run that resumes restores its flow's kept results and marks
the tasks they make needless as finished; every run writes what it computed of them
(``results.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import Flow
from prefect.engine.state import State, TriggerFailed
from prefect.utilities.logging import get_logger

from . import signals
from .backends import ClusterUnreachable, VersionMismatchError
from .coiled_api import CoiledUnavailable
from .plan import PLAN_KEY, RunPlan, cluster_spec, plan_run, resolve_backend
from .results import start_run
from .rules import SettingError
from .session import end_run, interrupted_line

if TYPE_CHECKING:
    from .contract import FlowDeclaration

EXIT_FAILED = 1
EXIT_USAGE = 2
# Where a failed task's state keeps how many times it ran (flow.py, the retry policy).
ATTEMPTS = "attempts"
# The run never started, through no fault of the command line (exit 1): Coiled, a gateway or
# a scheduler out of reach, or a cluster whose packages do not match this environment's.
CANNOT_START = (CoiledUnavailable, ClusterUnreachable, VersionMismatchError)


@contextmanager
def exit_on_refusal(*refusals: type[Exception], code: int = EXIT_USAGE) -> Iterator[None]:
    """Turn a refusal (by default a SettingError) into its one line and an exit with ``code``.

    For the code Prefect calls (``prefect run -p``): Prefect shows any exception with
    its traceback, while an exit passes through it untouched.
    """
    caught = refusals or (SettingError,)
    try:
        yield
    except caught as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(code) from None


class ClusterFlow(Flow):
    """A Prefect ``Flow`` whose every run follows one plan and closes its clusters however it ends."""

    declaration: FlowDeclaration | None = None  # set by ``declare``

    def run(  # type: ignore[override]
        self,
        parameters: Mapping[str, Any] | None = None,
        run_on_schedule: bool | None = None,
        runner_cls: type | None = None,
        *,
        plan: RunPlan | None = None,
        **kwargs: Any,
    ) -> State:
        """Run once, as ``plan`` says; without one (``prefect run -p``, a notebook), as the environment says."""
        if plan is None:
            plan = self.plan_here(parameters or {})
        if run_on_schedule or self.schedule is not None:
            get_logger("run").info("%s runs once: `serve` runs flows on a schedule", self.name)
        context = {**kwargs.pop("context", {}), PLAN_KEY: plan}
        started = time.perf_counter()
        try:
            signals.check()  # a signal dropped while the flows loaded or the run was planned ends it here
            start = start_run(self, self.declaration, plan)  # restored tasks, and those that need not run
            state = super().run(
                parameters=dict(plan.parameters),
                run_on_schedule=False,
                runner_cls=runner_cls,
                context={**context, **start.context},
                task_states={**start.task_states, **kwargs.pop("task_states", {})},
                **kwargs,
            )
            start.keep_finished(state, self)
        except KeyboardInterrupt as interrupt:
            sessions, _ = end_run(plan)
            print(f"{self.name}: {interrupted_line(interrupt, sessions)}", file=sys.stderr, flush=True)
            signals.reported = True
            raise
        _, interrupt = end_run(plan)
        get_logger("run").info(
            "flow=%s state=%s wall=%.2fs backend=%s",
            self.name,
            type(state).__name__,
            time.perf_counter() - started,
            plan.backend,
        )
        if interrupt is not None:  # a signal while the clusters closed: they are closed, the run is over
            raise interrupt
        return state

    def plan_here(self, parameters: Mapping[str, Any]) -> RunPlan:
        """The plan of a run started without one; a refusal is one line and an exit, as on the command line."""
        with exit_on_refusal(*CANNOT_START, code=EXIT_FAILED), exit_on_refusal(ValueError, code=EXIT_USAGE):
            if self.declaration is None:  # a flow not (yet) declared: nothing to check its parameters by
                return RunPlan(self.name, dict(parameters), cluster_spec(resolve_backend(), self.name))
            return plan_run(self.declaration, parameters)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its state, the flow's result, and why it failed, if it did."""

    state: State
    result: Any
    failure: str | None


def run_flow(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    cluster: str | None = None,
    keep: bool = False,
    report: Path | None = None,
    force: bool = False,
    resume: bool | None = None,
) -> RunOutcome:
    """Run the flow ``name`` as ``run`` does: checks first (ValueError, before any cluster starts), then
    the run, its clusters closed however it ends. What the command line and the tests run flows with.
    ``resume`` restores kept results (None: as ``<PREFIX>_RESUME`` says)."""
    from .contract import find_flow

    declaration = find_flow(name)
    plan = plan_run(declaration, parameters, cluster=cluster, keep=keep, report=report, force=force, resume=resume)
    return outcome(declaration.flow.run(plan=plan), declaration)


def outcome(state: State, declaration: FlowDeclaration) -> RunOutcome:
    if state.is_successful():
        return RunOutcome(state, state.result[declaration.result].result, None)
    return RunOutcome(state, None, failure_message(state, declaration.flow))


def failure_message(state: State, flow: Flow) -> str:
    """Name the first task, in the flow's order, that failed, and quote its error.

    Knock-on failures (tasks whose upstream failed) are skipped: they say nothing new.
    A task that was retried says how many attempts it had, so a user knows the error
    was not a passing glitch.
    """
    task_states = state.result if isinstance(state.result, dict) else {}
    for task in flow.sorted_tasks():
        for index, child in _with_map_children(task_states.get(task)):
            if child.is_failed() and not isinstance(child, TriggerFailed):
                where = f"task {task.name!r}" + (f" (map index {index})" if index is not None else "")
                runs = child.context.get(ATTEMPTS, 1)
                attempts = f" ({runs} attempts)" if runs > 1 else ""
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
