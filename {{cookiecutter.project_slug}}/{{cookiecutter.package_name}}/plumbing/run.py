"""A flow run from its plan to its end: ``ClusterFlow``, the Prefect ``Flow`` every flow of the project is.

Every way of starting a flow goes through ``ClusterFlow.run``: the command line (``run``
and every run of ``serve``, with the plan it made), ``prefect run -p`` and a notebook's
``flow.run()`` (a plan made here, from the environment, whose refusals end the process
with one line, as the command line's do). The run is one pass of Prefect's own
``Flow.run`` with the plan in its context, never on the flow's schedule (``serve`` keeps
schedules); however it ends, its clusters are closed before ``run`` returns or raises,
it ends with one summary line, and it is recorded in the run history (a row from its
start, completed at its end) and alerted as the plan says (``history.py``, ``alerts.py``),
after its clusters are closed, so neither can keep one running.

Before Prefect starts, a run that resumes restores its flow's kept results and marks
the tasks they make needless as finished; every run writes what it computed of them
(``results.py``).

A Prefect agent calls Prefect's runner directly, not ``run``: for those runs the flow's
state handler ``recorded_when_finished`` records and alerts the run once it finishes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import uuid4

from prefect import Flow
from prefect.engine.state import State, TriggerFailed
from prefect.utilities.logging import get_logger

from . import alerts, history, signals
from .backends import ClusterUnreachable, VersionMismatchError
from .coiled_api import CoiledUnavailable
from .history import RunEntry
from .plan import PLAN_KEY, RunPlan, cluster_spec, history_file, plan_run, resolve_backend, run_alerts, runner_run_id
from .results import start_run
from .rules import SettingError
from .session import ClusterSession, end_run, interrupted_line

if TYPE_CHECKING:
    from .contract import FlowDeclaration

EXIT_FAILED = 1
EXIT_USAGE = 2
INTERRUPTED = "Interrupted"  # the recorded state of a run a signal ended
REFUSED = "Refused"  # the recorded state of a ``serve`` run whose checks refused it
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
        entry = planned_entry(plan)
        row = history.begin(plan.history, entry)
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
        except BaseException as ending:  # a signal, or a refusal's exit from inside a task
            self.cut_short(plan, row, entry, ending)
            raise
        sessions, interrupt = end_run(plan.run_id)
        get_logger("run").info(
            "flow=%s state=%s wall=%.2fs backend=%s",
            self.name,
            type(state).__name__,
            time.perf_counter() - started,
            plan.backend,
        )
        record_and_alert(plan, row, ended_entry(entry, sessions, state=state, flow=self, ending=interrupt))
        if interrupt is not None:  # a signal while the clusters closed: they are closed, the run is over
            raise interrupt
        return state

    def cut_short(self, plan: RunPlan, row: int | None, entry: RunEntry, ending: BaseException) -> None:
        """A run that ``ending`` cut short: its clusters closed (after a signal, with the line that says
        so), then recorded and alerted, before ``ending`` goes on."""
        sessions, _ = end_run(plan.run_id)
        if isinstance(ending, KeyboardInterrupt):
            print(f"{self.name}: {interrupted_line(ending, sessions)}", file=sys.stderr, flush=True)
            signals.reported = True
        record_and_alert(plan, row, ended_entry(entry, sessions, ending=ending))

    def plan_here(self, parameters: Mapping[str, Any]) -> RunPlan:
        """The plan of a run started without one; a refusal is one line and an exit, as on the command line."""
        with exit_on_refusal(*CANNOT_START, code=EXIT_FAILED), exit_on_refusal(ValueError, code=EXIT_USAGE):
            if self.declaration is None:  # a flow not (yet) declared: nothing to check its parameters by
                spec = cluster_spec(resolve_backend(), self.name)
                return RunPlan(self.name, dict(parameters), spec, history=history_file(), alerts=run_alerts())
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


class Failure(NamedTuple):
    """Why a run failed: the first task that did (None if none did) and the line that says so."""

    task: str | None
    message: str


def first_failure(state: State, flow: Flow) -> Failure:
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
                return Failure(task.name, f"{where} failed: {_reason(child)}{attempts}")
    return Failure(None, f"flow failed: {state.message}")


def failure_message(state: State, flow: Flow) -> str:
    """The line a failed run ends with: its first failed task and that task's error."""
    return first_failure(state, flow).message


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


def record_and_alert(plan: RunPlan, row: int | None, entry: RunEntry) -> None:
    """Complete the run's history row, then send its alert; neither can change how the run ended."""
    try:
        history.finish(plan.history, row, entry)
        alerts.notify(plan.alerts, entry)
    except Exception as error:  # each says what went wrong itself; this is for what nobody foresaw
        print(f"warning: run not recorded or alerted: {type(error).__name__}: {error}", file=sys.stderr)


def planned_cluster(plan: RunPlan) -> str | None:
    """The cluster a run is to use, as far as its plan knows: a scheduler's address, or a fixed name."""
    kwargs = plan.spec.kwargs
    return kwargs.get("address") or kwargs.get("name")


def planned_entry(plan: RunPlan) -> RunEntry:
    """The history's row of a run about to start."""
    return RunEntry(
        run_id=plan.run_id,
        flow=plan.flow,
        parameters=dict(plan.parameters),
        backend=plan.backend,
        cluster=planned_cluster(plan),
        started=history.now(),
        report=None if plan.report is None else str(plan.report),
    )


def ended_entry(
    entry: RunEntry,
    sessions: Sequence[ClusterSession],
    *,
    state: State | None = None,
    flow: Flow | None = None,
    ending: BaseException | None = None,
) -> RunEntry:
    """The row of a run that ended with ``state``, or with ``ending`` raised (which decides its exit status)."""
    names = [session.cluster_name for session in sessions if session.cluster_name]
    cluster = ", ".join(dict.fromkeys(names)) or entry.cluster
    if isinstance(ending, KeyboardInterrupt):
        outcome = (INTERRUPTED, None, f"interrupted by {signals.signal_name(ending)}", signals.exit_status(ending))
    elif ending is not None:
        outcome = ("Failed", None, *ending_reason(ending))
    elif state is not None and state.is_successful():
        outcome = (type(state).__name__, None, None, 0)
    else:
        failure = first_failure(state, flow) if state is not None and flow is not None else Failure(None, "failed")
        outcome = (type(state).__name__, failure.task, failure.message, EXIT_FAILED)
    state_name, task, error, status = outcome
    return replace(
        entry, cluster=cluster, ended=history.now(), state=state_name, failed_task=task, error=error, exit_status=status
    )


def ending_reason(ending: BaseException) -> tuple[str, int]:
    """What an exception that ended a run says, and the exit status it ends the process with.

    A refusal from inside a task (a Coiled or scheduler out of reach) arrives as the
    ``SystemExit`` of ``exit_on_refusal``, which keeps the refused error as its context.
    """
    if isinstance(ending, SystemExit):
        cause = ending.__cause__ or ending.__context__
        status = ending.code if isinstance(ending.code, int) else EXIT_FAILED
        return (str(cause) if cause is not None else f"exit status {status}"), status
    return f"{type(ending).__name__}: {ending}", EXIT_FAILED


def record_refusal(name: str, parameters: Mapping[str, Any], error: Exception, status: int) -> None:
    """Record and alert a run that ``serve`` could not start (its checks refused it at its date)."""
    entry = RunEntry(uuid4().hex, name, dict(parameters), "", None, history.now())
    entry = replace(entry, ended=entry.started, state=REFUSED, error=str(error), exit_status=status)
    try:
        path, where = history_file(), run_alerts()
    except SettingError as problem:  # the settings passed when serve started; say so if they no longer do
        print(f"warning: run not recorded: {problem}", file=sys.stderr)
        return
    history.begin(path, entry)
    alerts.notify(where, entry)


def recorded_when_finished(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler: record and alert a run Prefect started without ``ClusterFlow.run`` (an agent's
    runner), once it finishes. ``ClusterFlow.run`` records every other run itself, from its start."""
    import prefect

    if new_state.is_finished() and prefect.context.get(PLAN_KEY) is None:
        try:
            record_runner_run(flow, new_state, prefect.context)
        except Exception as error:  # a record must never change how the run ended
            print(f"warning: run not recorded: {type(error).__name__}: {error}", file=sys.stderr)
    return new_state


def record_runner_run(flow: Flow, state: State, context: Mapping[str, Any]) -> None:
    """The whole row of a run that is over, from Prefect's context; its clusters are closed by now."""
    sessions, _ = end_run(runner_run_id())
    date = context.get("date")  # when Prefect's runner started the run (a pendulum DateTime)
    started = history.now() if date is None else history.from_timestamp(date.timestamp())
    backends = dict.fromkeys(session.spec.backend for session in sessions)
    entry = RunEntry(
        run_id=str(context.get("flow_run_id") or uuid4().hex),
        flow=flow.name,
        parameters=dict(context.get("parameters") or {}),
        backend=", ".join(backends) or resolve_backend(),
        cluster=None,
        started=started,
    )
    entry = ended_entry(entry, sessions, state=state, flow=flow)
    history.begin(history_file(), entry)
    alerts.notify(run_alerts(), entry)
