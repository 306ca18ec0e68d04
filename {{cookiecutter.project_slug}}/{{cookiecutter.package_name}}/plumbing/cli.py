"""Command line: ``python -m <package> flows | run | serve | runs | results | diagram | doctor | clusters``
and the commands flows add.

Every command that computes makes its run plan first (``plan.py``), so whatever the
command line, the settings or the sizes refuse stops it with one line before any
cluster starts: exit 2 for what the user gave, 1 for a Coiled, gateway or scheduler out
of reach, 128 + N for a signal.

``serve`` runs one flow on a schedule in this process, for machines with no cron or
scheduler of their own. Prefect 1's schedules compute the dates, but Prefect's own loop
(``flow.run()`` on a flow with a schedule) does not run them: there, one failed run ends
the loop and every later run. Here each date gets a whole run, as ``run`` makes one
(its own plan and checks, its own cluster or the warm one, closed however it ends,
recorded and alerted), and a run that fails is followed by the next date all the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sqlite3
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import ENV_PREFIX
from . import signals
from .contract import FlowCommand, FlowContractError, FlowDeclaration, find_flows
from .rules import BACKENDS, RuleError, SettingError, cron, duration_seconds, every, whole_number
from .run import CANNOT_START, EXIT_FAILED, EXIT_USAGE, RunOutcome

if TYPE_CHECKING:
    from pendulum import DateTime
    from prefect.schedules import Schedule

PROG = f"python -m {__package__.partition('.')[0]}"
DIAGRAMS = Path("diagrams")
INSTALL_GRAPHVIZ_PACKAGE = "pip install -e '.[diagram]' or conda install -c conda-forge python-graphviz"
INSTALL_DOT = "conda install -c conda-forge graphviz, sudo apt-get install graphviz or brew install graphviz"
RUNS_MAX = 1_000_000  # serve --runs: more is "until stopped"
LIMIT_MAX = 10_000  # runs --limit
LIMIT = "20"
WAKE_SECONDS = 60  # a wait re-reads the clock this often: a suspended machine or a clock change is caught up


def build_parser(flows: Mapping[str, FlowDeclaration], any_flow: bool = False) -> argparse.ArgumentParser:
    """The command line; ``any_flow`` takes any flow name, for when the flows cannot be loaded
    and the reason, not a list of choices, is what to print."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("flows", help="list the flows and their parameters")
    run = commands.add_parser(
        "run",
        help="run one flow",
        epilog="flows:\n" + textwrap.indent(flow_listing(flows), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "flow", choices=None if any_flow else sorted(flows), metavar="FLOW", help="the flow to run (listed below)"
    )
    add_run_options(run)
    run.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write Dask's HTML performance report of the run to PATH (a new file: an existing one is refused)",
    )
    results = commands.add_parser("results", help="list the kept results that run --resume restores, or remove them")
    results.add_argument(
        "--clear", nargs="?", const="", metavar="FLOW", help="remove FLOW's kept results, or without FLOW all of them"
    )
    add_serve_parser(commands, flows, any_flow)
    add_runs_parser(commands)
    diagram = commands.add_parser("diagram", help="write a PNG of each flow's task graph (needs graphviz)")
    diagram.add_argument("--output-dir", type=Path, default=DIAGRAMS, help=f"where to write (default: {DIAGRAMS})")
    commands.add_parser("doctor", help="check this environment against the pins before running on Coiled")
    clusters = commands.add_parser("clusters", help="list the project's running Coiled clusters, or stop them")
    clusters.add_argument("--stop", nargs="?", const="", metavar="NAME", help="stop NAME, or without NAME all of them")
    for name, command in flow_commands(flows).items():
        extra = commands.add_parser(name, help=command.help, description=command.help)
        command.arguments(extra)
        add_cluster_option(extra)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What ``run`` and ``serve`` both take: where, with which parameters, over the limits, kept warm."""
    add_cluster_option(parser)
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="set a flow parameter (repeatable)"
    )
    parser.add_argument(
        "--force", action="store_true", help="run on the local cluster even over this machine's limits (the estimate)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the Coiled cluster running for the next run of the flow, until its idle timeout",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="restore the flow's kept results instead of computing them, e.g. after a failed run (docs/resume.md)",
    )


def add_serve_parser(commands: Any, flows: Mapping[str, FlowDeclaration], any_flow: bool) -> None:
    serve = commands.add_parser(
        "serve",
        help="run one flow on a schedule until stopped, each run a whole run",
        description="Run FLOW at every date of a cron schedule (this machine's time zone) or every DURATION "
        "(the first run at once); a failed run is recorded and alerted, and the next date comes all the same.",
        epilog="flows:\n" + textwrap.indent(flow_listing(flows), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "flow", choices=None if any_flow else sorted(flows), metavar="FLOW", help="the flow to run (listed below)"
    )
    when = serve.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="'M H DOM MON DOW'", help="five cron fields, e.g. '0 6 * * *' (daily at 6:00)")
    when.add_argument("--every", metavar="DURATION", help="e.g. 10m, 2h or '1 day'; the first run starts at once")
    serve.add_argument("--runs", metavar="N", help="stop after N runs; exit 0 only if every one succeeded")
    add_run_options(serve)


def add_runs_parser(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list the recorded runs, newest first")
    runs.add_argument("--flow", metavar="FLOW", help="only the runs of FLOW")
    runs.add_argument("--failed", action="store_true", help="only the runs that did not succeed")
    runs.add_argument("--limit", default=LIMIT, metavar="N", help=f"at most N runs (default: {LIMIT})")
    runs.add_argument("--json", action="store_true", help="as a JSON list, with every field of each run")


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster",
        metavar="|".join([*BACKENDS, "ADDRESS"]),
        help="where to compute: a backend, or a running scheduler's address such as tcp://host:8786 "
        "(default: environment, then settings.py)",
    )


def flow_commands(flows: Mapping[str, FlowDeclaration]) -> dict[str, FlowCommand]:
    """The commands the flows add, by name (find_flows has refused duplicates)."""
    return {name: command for declaration in flows.values() for name, command in declaration.commands.items()}


def flow_listing(flows: Mapping[str, FlowDeclaration]) -> str:
    """Each flow with its description and its parameters' defaults, as ``flows`` prints them."""
    entries = []
    for name, declaration in flows.items():
        defaults = " ".join(f"{key}={value}" for key, value in declaration.defaults.items()) or "(none)"
        entries.append(f"{name}\n    {declaration.description}\n    parameters: {defaults}")
    return "\n".join(entries) or "(no module in flows/ declares FLOW)"


def refused(error: Exception) -> int:
    """One line for a run that never started: exit 2 for what the user gave (parameters,
    settings, flow modules, sizes), 1 for a Coiled that cannot be reached or refuses, and
    for a scheduler address or gateway that does not answer."""
    print(f"error: {error}", file=sys.stderr)
    return EXIT_FAILED if isinstance(error, CANNOT_START) else EXIT_USAGE


def run_command(args: argparse.Namespace, declaration: FlowDeclaration) -> int:
    from .run import run_flow

    try:
        parameters = declaration.parsed(args.param)
        done = run_flow(
            args.flow,
            parameters,
            cluster=args.cluster,
            keep=args.keep,
            report=args.report,
            force=args.force,
            resume=args.resume,
        )
    except (ValueError, *CANNOT_START) as error:
        return refused(error)
    except KeyboardInterrupt as interrupt:  # the flow has closed its clusters and said so, if it had begun
        return interrupted_before_the_run(interrupt, declaration.name)
    signals.settle()  # the run has ended: its last lines and its exit status stand
    return finished(declaration, done)


def finished(declaration: FlowDeclaration, done: RunOutcome) -> int:
    """A run's last lines, the state and the result or why it failed, and its exit status."""
    if done.failure:
        print(f"{declaration.name}: {type(done.state).__name__}: {done.failure}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print(f"{declaration.name}: {type(done.state).__name__}")
    print(done.result, flush=True)
    return 0


def checked(rule: Callable[[object], Any], value: object, option: str) -> Any:
    """``value`` as ``rule`` reads it; SettingError naming the option otherwise."""
    try:
        return rule(value)
    except RuleError as error:
        raise SettingError(f"{option}: {error}") from None


def local_now() -> DateTime:
    """Now, in this machine's time zone as cron reads it (UTC where Prefect's schedules cannot name the zone)."""
    import pendulum
    import pytz

    zone = pendulum.local_timezone()
    try:
        pytz.timezone(zone.name)  # Prefect's cron clock looks the zone up there
    except pytz.UnknownTimeZoneError:
        zone = pendulum.timezone("UTC")
    return pendulum.now(zone)


def schedule_of(cron_text: str | None, interval: str | None) -> Schedule:
    """Prefect 1's schedule for ``--cron`` or ``--every``, from now, each checked by its rule in rules.py."""
    from prefect.schedules import CronSchedule, IntervalSchedule

    if cron_text is not None:
        return CronSchedule(checked(cron, cron_text, "--cron"), start_date=local_now())
    seconds = duration_seconds(checked(every, interval, "--every"))
    return IntervalSchedule(start_date=local_now(), interval=timedelta(seconds=seconds))


def next_date(schedule: Schedule) -> DateTime | None:
    """The schedule's first date after now: a date that passed while a run went on is skipped, never queued."""
    dates = schedule.next(1, after=local_now())
    return dates[0] if dates else None


def sleep_until(when: DateTime) -> None:
    """Wait until ``when`` by the clock; a signal ends the wait at once (it raises, as everywhere)."""
    while (left := (when - local_now()).total_seconds()) > 0:
        time.sleep(min(left, WAKE_SECONDS))


def serve_command(args: argparse.Namespace, declaration: FlowDeclaration) -> int:
    """Run the flow at every date of the schedule; exit with ``--runs`` done (0 only if each succeeded),
    or at a signal (128 + N)."""
    from .plan import plan_run

    try:
        schedule = schedule_of(args.cron, args.every)
        runs = None if args.runs is None else checked(whole_number(RUNS_MAX), args.runs, "--runs")
        parameters = declaration.parsed(args.param)
        plan_run(declaration, parameters, cluster=args.cluster, keep=args.keep, force=args.force, resume=args.resume)
    except (ValueError, *CANNOT_START) as error:
        return refused(error)
    done = failed = 0
    try:
        while runs is None or done < runs:
            when = local_now() if args.every is not None and done == 0 else next_date(schedule)
            if when is None:
                break
            print(f"{declaration.name}: next run at {when:%Y-%m-%d %H:%M:%S %Z}", flush=True)
            sleep_until(when)
            failed += serve_once(args, declaration, parameters) != 0
            done += 1
    except KeyboardInterrupt as interrupt:
        if not signals.reported:  # a run ended by it has said so, with what became of its cluster
            print(
                f"{declaration.name}: interrupted by {signals.signal_name(interrupt)} between runs; nothing was running",
                file=sys.stderr,
                flush=True,
            )
            signals.reported = True
        return signals.exit_status(interrupt)
    print(f"{declaration.name}: {done} runs, {failed} did not succeed", flush=True)
    return EXIT_FAILED if failed else 0


def serve_once(args: argparse.Namespace, declaration: FlowDeclaration, parameters: dict[str, Any]) -> int:
    """One whole run of ``serve``, as ``run`` makes it; its exit status. A run its checks refuse at its
    date is said, recorded and alerted here (``ClusterFlow.run`` does it for every run that starts)."""
    from .plan import plan_run
    from .run import outcome, record_refusal

    try:
        plan = plan_run(
            declaration, parameters, cluster=args.cluster, keep=args.keep, force=args.force, resume=args.resume
        )
    except (ValueError, *CANNOT_START) as error:
        status = refused(error)
        record_refusal(declaration.name, parameters, error, status)
        return status
    try:
        done = outcome(declaration.flow.run(plan=plan), declaration)
    except SystemExit as ended:  # a refusal from inside the run, said and recorded by now
        return ended.code if isinstance(ended.code, int) else EXIT_FAILED
    return finished(declaration, done)


def runs_command(args: argparse.Namespace) -> int:
    from . import history
    from .plan import history_file

    try:
        path = history_file()
        limit = checked(whole_number(LIMIT_MAX), args.limit, "--limit")
    except ValueError as error:
        return refused(error)
    if path is None:
        print(f"no run history is kept: {ENV_PREFIX}HISTORY is empty", file=sys.stderr)
        return 0
    try:
        records = history.listed(path, args.flow, args.failed, limit)
    except sqlite3.Error as error:
        print(f"error: run history {path}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(history.table(records) if records else f"no runs recorded in {path}")
    return 0


def flow_command(args: argparse.Namespace, command: FlowCommand) -> int:
    from .plan import plan_command
    from .session import end_run, interrupted_line

    plan = None
    try:
        plan = plan_command(args.command, args.cluster)
        signals.check()
        print(command.run(args, plan))
    except (ValueError, *CANNOT_START) as error:
        return refused(error)
    except KeyboardInterrupt as interrupt:
        sessions, _ = end_run(plan.run_id) if plan is not None else ([], None)
        print(f"{args.command}: {interrupted_line(interrupt, sessions)}", file=sys.stderr, flush=True)
        signals.reported = True
        return signals.exit_status(interrupt)
    except Exception as error:  # one line, as for a failed flow run; the cluster is closed by now
        print(f"{args.command}: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if plan is not None:
            end_run(plan.run_id)
    return 0


def clusters_command(args: argparse.Namespace) -> int:
    from .coiled_api import clusters_command as listed
    from .plan import setting

    try:
        print(listed(args.stop, setting("COILED_WORKSPACE")))
    except (ValueError, *CANNOT_START) as error:
        return refused(error)
    return 0


def results_command(args: argparse.Namespace, flows: Mapping[str, FlowDeclaration]) -> int:
    """List the kept results at ``<PREFIX>_RESULTS``, or remove them; a store out of reach is one line, exit 1."""
    from .plan import results_location
    from .results import clear, listing

    try:
        location = results_location()
        print(listing(location, flows) if args.clear is None else clear(location, args.clear, flows))
    except ValueError as error:
        return refused(error)
    except (ImportError, OSError) as error:
        print(f"error: kept results: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def diagram_command(args: argparse.Namespace, flows: Mapping[str, FlowDeclaration]) -> int:
    """A PNG of each flow's graph, from Prefect's ``flow.visualize``; what pip alone cannot install
    (Graphviz's ``dot``) is checked first and named in one line with how to install it."""
    missing = []
    if importlib.util.find_spec("graphviz") is None:
        missing.append(f"the graphviz Python package ({INSTALL_GRAPHVIZ_PACKAGE})")
    if shutil.which("dot") is None:
        missing.append(f"Graphviz's dot program on PATH ({INSTALL_DOT})")
    if missing:
        print(f"error: drawing diagrams needs {' and '.join(missing)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for name, declaration in flows.items():
            # graphviz appends the format to the name and deletes its intermediate source file.
            declaration.flow.visualize(filename=str(args.output_dir / name), format="png")
            print(args.output_dir / f"{name}.png")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def interrupted_before_the_run(interrupt: KeyboardInterrupt, name: str) -> int:
    """A signal while the run was planned says so in one line, as the run itself would have."""
    if not signals.reported:
        print(f"{name}: interrupted by {signals.signal_name(interrupt)}; nothing had started", file=sys.stderr)
        signals.reported = True
    return signals.exit_status(interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a flow module that cannot be loaded stops every command but ``doctor``."""
    try:
        flows, broken = find_flows(), None
    except (FlowContractError, SettingError) as error:
        flows, broken = {}, error
    args = build_parser(flows, any_flow=broken is not None).parse_args(argv)
    if args.command == "doctor":
        from .doctor import main as doctor

        return doctor()
    if broken is not None:
        return refused(broken)
    if args.command == "flows":
        print(flow_listing(flows))
        return 0
    if args.command == "diagram":
        return diagram_command(args, flows)
    if args.command == "clusters":
        return clusters_command(args)
    if args.command == "results":
        return results_command(args, flows)
    if args.command == "run":
        return run_command(args, flows[args.flow])
    if args.command == "serve":
        return serve_command(args, flows[args.flow])
    if args.command == "runs":
        return runs_command(args)
    return flow_command(args, flow_commands(flows)[args.command])
