"""What one run will do, decided once, before Prefect starts it: the run plan.

A run's choices (the flow and its checked parameters, where it computes, the cluster's
spec and name, whether the cluster is kept, where its report goes, whether sizes over
this machine's limits are forced, where kept results go and whether they are restored,
where the run is recorded and alerted) are resolved here into one immutable ``RunPlan``. The
flow hands it to Prefect in the run's context, where the cluster resource and the
executor read it: nothing is resolved again while the flow runs, so a Coiled token is
checked once, a cluster has one name, and every refusal comes before any cluster starts.

Where a run computes comes, highest precedence first, from the command line's
``--cluster``, the ``<PREFIX>_CLUSTER`` variable and settings.py: a backend name or a
running scheduler's address. Every other setting is its settings.py constant, unless its
``<PREFIX>_`` variable says otherwise; both go through the same rule (``rules.py``).

Sizes: a run that cannot finish on this machine should say so in a second, not after
minutes of swapping, a ``MemoryError`` or a day of retry waits with a cluster up. Each
estimate compares a size with a limit derived from the machine (cores, memory) and a
time budget for one local run (docs/design.md, "Limits"). Locally a run over a limit is
refused with one line giving the size and how to proceed, unless forced; on a remote
backend the machine running the flow is not the one computing, so it is only logged.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from .. import settings
from ..settings import ENV_PREFIX
from .alerts import Alerts
from .backends import ClusterSpec, attached_spec, gateway_spec, local_spec
from .rules import SETTINGS, RuleError, SettingError, unknown_variables

if TYPE_CHECKING:
    from prefect import Flow

    from .contract import FlowDeclaration

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the package
# Prefect's own secret for Slack webhooks, which its users may have set already.
PREFECT_WEBHOOK_SECRET = "SLACK_WEBHOOK_URL"
PREFECT_WEBHOOK_VARIABLE = f"PREFECT__CONTEXT__SECRETS__{PREFECT_WEBHOOK_SECRET}"
PLAN_KEY = "run_plan"  # where the plan is in prefect.context while its flow runs
# One local run should finish within this; beyond it, a remote cluster or smaller input.
LOCAL_BUDGET_SECONDS = 300
# A run may hold at most this share of the machine's memory; the rest is the OS's and the user's.
MEMORY_SHARE = 0.5
# Worker processes per core: more only queue for the same cores, and each costs memory and start time.
WORKERS_PER_CORE = 2
# Threads in all per core: more only contend for the same cores.
THREADS_PER_CORE = 4


def setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Setting ``name`` as the project uses it: its ``<PREFIX>_`` variable, else its settings.py default.

    SettingError, naming the variable, the value and what is allowed, if its rule refuses it.
    """
    environ = os.environ if environ is None else environ
    variable = ENV_PREFIX + name
    try:
        return SETTINGS[name].rule(environ.get(variable, getattr(settings, name)))
    except RuleError as error:
        where = variable if variable in environ else f"{variable} (unset; the default in settings.py)"
        raise SettingError(f"{where}: {error}") from None


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """A warning for every ``<PREFIX>_*`` variable no setting reads: a typo is never ignored without a word."""
    for warning in unknown_variables(os.environ if environ is None else environ, ENV_PREFIX):
        print(warning, file=sys.stderr)


def resolve_backend(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The backend: an explicit choice (``--cluster``), then the environment, then settings.py."""
    if explicit:
        try:
            return str(SETTINGS["CLUSTER"].rule(explicit))
        except RuleError as error:
            raise SettingError(f"--cluster: {error}") from None
    return str(setting("CLUSTER", environ))


def cluster_spec(backend: str, name: str, keep: bool = False, environ: Mapping[str, str] | None = None) -> ClusterSpec:
    """The cluster ``backend`` gives a run (or command) named ``name``, every setting read and checked.

    Only the settings of that backend are read: a bad Coiled setting never stops a local run.
    """
    environ = os.environ if environ is None else environ
    if keep and backend != "coiled":
        raise SettingError(f"--keep: keeps Coiled clusters only; this run computes on the {backend} cluster")
    if backend == "local":
        return local_spec(
            name,
            setting("LOCAL_N_WORKERS", environ),
            setting("LOCAL_THREADS_PER_WORKER", environ),
            setting("LOCAL_PROCESSES", environ),
        )
    if backend == "coiled":
        from .coiled_api import coiled_spec

        coiled = {key: setting(key, environ) for key in SETTINGS if key.startswith("COILED_")}
        return coiled_spec(name, coiled, keep or coiled["COILED_KEEP"], environ)
    timeout = setting("CONNECT_TIMEOUT_SECONDS", environ)
    if backend == "gateway":
        return gateway_spec(name, setting("GATEWAY_ADDRESS", environ), setting("GATEWAY_N_WORKERS", environ), timeout)
    return attached_spec(name, backend, timeout)  # any other backend resolve_backend accepts is an address


@dataclass(frozen=True)
class Machine:
    """What this machine offers a local run."""

    cores: int
    memory_bytes: int
    seconds: float = LOCAL_BUDGET_SECONDS  # the time budget of one local run

    @classmethod
    def here(cls) -> Machine:
        import psutil

        return cls(os.cpu_count() or 1, psutil.virtual_memory().total)

    @property
    def memory_budget(self) -> float:
        return self.memory_bytes * MEMORY_SHARE


@dataclass(frozen=True)
class Estimate:
    """One size of a run, its limit on this machine, and how to proceed when it is over."""

    what: str  # e.g. "rows", "task runs"
    size: float
    limit: float
    advice: str  # e.g. "use a smaller window"

    @property
    def over(self) -> bool:
        return self.size > self.limit

    def describe(self) -> str:
        return f"{self.size:,.0f} {self.what} (limit here {self.limit:,.0f})"


Estimator = Callable[[Mapping[str, Any], Machine], Iterable[Estimate]]


class TooBig(ValueError):
    """A run over a local limit; the message gives the size and the ways to proceed."""


def layout_estimates(cluster_kwargs: Mapping[str, Any], machine: Machine) -> list[Estimate]:
    """Worker processes and threads of the local cluster against the cores."""
    workers = int(cluster_kwargs.get("n_workers", 1))
    threads = workers * int(cluster_kwargs.get("threads_per_worker", 1))
    advice = "set fewer workers or threads (LOCAL_N_WORKERS, LOCAL_THREADS_PER_WORKER)"
    found = [Estimate("worker threads", threads, THREADS_PER_CORE * machine.cores, advice)]
    if cluster_kwargs.get("processes", True):
        found.append(Estimate("worker processes", workers, WORKERS_PER_CORE * machine.cores, advice))
    return found


def retry_wait_estimate(flow: Flow, machine: Machine) -> Estimate:
    """The longest a failing task keeps the run (and its cluster) waiting between its attempts."""
    waits = [
        task.max_retries * (task.retry_delay or timedelta()).total_seconds()
        for task in flow.tasks
        if getattr(task, "max_retries", 0)
    ]
    return Estimate(
        "seconds of retry waits per task",
        max(waits, default=0),
        machine.seconds,
        "lower the retry delay (RETRY_DELAY_SECONDS)",
    )


def checked_estimates(
    estimates: Iterable[Estimate], *, local: bool, force: bool, logger: logging.Logger, flow_name: str
) -> tuple[Estimate, ...]:
    """Log every estimate; raise TooBig for the first over its limit when local and not forced."""
    estimates = tuple(estimates)
    logger.info("%s estimate: %s", flow_name, "; ".join(estimate.describe() for estimate in estimates))
    over = [estimate for estimate in estimates if estimate.over]
    if over and local and not force:
        first = over[0]
        raise TooBig(
            f"{flow_name}: {first.describe()} is more than this machine finishes in a local run; "
            f"{first.advice}, run it on Coiled (--cluster coiled), or pass --force"
        )
    return estimates


@dataclass(frozen=True)
class RunPlan:
    """Everything one run (of a flow, or of a flow's command) decided before it started."""

    flow: str  # the flow's name, or the command's
    parameters: Mapping[str, Any]  # every parameter of the run, defaults filled in
    spec: ClusterSpec  # where it computes, with the cluster's name
    report: Path | None = None  # where Dask's performance report of the run goes
    force: bool = False  # run locally even over this machine's limits
    estimates: tuple[Estimate, ...] = ()
    results: str = ""  # where the flow's kept results go (empty: it keeps none); results.py
    resume: bool = False  # restore kept results instead of computing them
    history: Path | None = None  # the file the run is recorded in (none: not recorded)
    alerts: Alerts | None = None  # where the run's alert goes (none: no alert)
    run_id: str = field(default_factory=lambda: uuid4().hex)

    @property
    def backend(self) -> str:
        return self.spec.backend


def plan_run(
    declaration: FlowDeclaration,
    parameters: Mapping[str, Any] | None = None,
    *,
    cluster: str | None = None,
    keep: bool = False,
    report: Path | None = None,
    force: bool = False,
    resume: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunPlan:
    """Check everything a run of ``declaration`` needs and decide how it runs; ``resume``
    None means as ``<PREFIX>_RESUME`` says.

    Raises ValueError (FlowContractError, SettingError, TooBig, a refused ``report``),
    CoiledLoginNeeded, and nothing else, before anything starts.
    """
    from prefect.utilities.logging import get_logger

    checked = {**declaration.defaults, **declaration.checked(parameters or {})}
    results, resume = kept_results_choice(declaration, resume, environ)
    spec = cluster_spec(resolve_backend(cluster, environ), declaration.name, keep, environ)
    machine = Machine.here()
    estimates = [*declaration.estimates(checked, machine), retry_wait_estimate(declaration.flow, machine)]
    local = spec.backend == "local"
    if local:
        estimates += layout_estimates(spec.kwargs, machine)
    found = checked_estimates(estimates, local=local, force=force, logger=get_logger("estimate"), flow_name=spec.name)
    return RunPlan(
        declaration.name,
        checked,
        spec,
        checked_report_path(report),
        force,
        found,
        results=results,
        resume=resume,
        history=history_file(environ),
        alerts=run_alerts(environ),
    )


def history_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The run history's file (``<PREFIX>_HISTORY``; a relative path starts at the project folder, so every
    command finds the same one wherever it is started), or None for no history."""
    text = setting("HISTORY", environ)
    return in_project(text) if text else None


def in_project(text: str) -> Path:
    """A path a setting gives: a relative one starts at the project folder, so every command finds the same one."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def run_alerts(environ: Mapping[str, str] | None = None) -> Alerts | None:
    """Where runs' alerts go: ``<PREFIX>_SLACK_WEBHOOK_URL``, else Prefect's secret ``SLACK_WEBHOOK_URL``
    (``PREFECT__CONTEXT__SECRETS__SLACK_WEBHOOK_URL`` or Prefect's config), else nowhere."""
    always = setting("NOTIFY_ON", environ) == "always"  # read even without a webhook: a typo shows at once
    url = setting("SLACK_WEBHOOK_URL", environ) or prefect_webhook()
    return Alerts(url, always=always) if url else None


def prefect_webhook() -> str:
    """Prefect's secret ``SLACK_WEBHOOK_URL``, read from its local context only (never from a backend),
    by the same rule as the project's own variable."""
    import prefect

    value = (prefect.context.get("secrets") or {}).get(PREFECT_WEBHOOK_SECRET, "")
    try:
        return str(SETTINGS["SLACK_WEBHOOK_URL"].rule(value))
    except RuleError as error:
        raise SettingError(f"{PREFECT_WEBHOOK_VARIABLE} (Prefect's secret {PREFECT_WEBHOOK_SECRET}): {error}") from None


def kept_results_choice(
    declaration: FlowDeclaration, resume: bool | None, environ: Mapping[str, str] | None = None
) -> tuple[str, bool]:
    """Where the flow's kept results go and whether this run restores them (``results.py``).

    Read only for a flow that keeps results, so a bad value stops no other flow; an
    explicit ``--resume`` of a flow that keeps nothing is refused, as it would do nothing.
    """
    if not declaration.keep:
        if resume:
            raise ValueError(
                f"--resume: {declaration.name} keeps no results; name its costly tasks with declare(..., keep=[task])"
            )
        return "", False
    return results_location(environ), bool(setting("RESUME", environ) if resume is None else resume)


def results_location(environ: Mapping[str, str] | None = None) -> str:
    """``<PREFIX>_RESULTS``, checked; a folder is the project's wherever a command starts, as the history is."""
    from .results import check_location

    location = setting("RESULTS", environ)
    check_location(location)
    return location if "://" in location else str(in_project(location))


def plan_command(name: str, cluster: str | None = None, environ: Mapping[str, str] | None = None) -> RunPlan:
    """The plan of a flow's command (``sample-data``, ...): only where it computes."""
    return RunPlan(name, {}, cluster_spec(resolve_backend(cluster, environ), name, environ=environ))


def checked_report_path(path: Path | None) -> Path | None:
    """The report's path, once it is known to be writable without replacing anything; ValueError otherwise.

    Checked before any cluster starts: a report that cannot be written should not cost a run.
    """
    if path is None:
        return None
    if path.exists():
        raise ValueError(f"--report {path}: exists; choose a new file (a report never replaces one)")
    if not path.parent.is_dir():
        raise ValueError(f"--report {path}: the folder {path.parent} does not exist")
    return path


def current_plan() -> RunPlan:
    """The plan of the flow run in progress, from Prefect's context.

    A flow run started without one (by a Prefect agent, which calls Prefect's runner
    directly) gets one made from the environment, as ``prefect run -p`` does, under
    Prefect's id of the run: its clusters are that run's, whichever step asks.
    """
    from dataclasses import replace

    import prefect

    plan = prefect.context.get(PLAN_KEY)
    if plan is not None:
        return plan
    from .contract import find_flow

    declaration = find_flow(prefect.context.get("flow_name", ""))
    parameters = prefect.context.get("parameters", {})
    plan = plan_run(declaration, {key: value for key, value in parameters.items() if key in declaration.defaults})
    return replace(plan, run_id=runner_run_id())


def runner_run_id() -> str:
    """The id of the flow run Prefect's runner is in (a run started without ``ClusterFlow.run``)."""
    import prefect

    return str(prefect.context.get("flow_run_id") or "")
