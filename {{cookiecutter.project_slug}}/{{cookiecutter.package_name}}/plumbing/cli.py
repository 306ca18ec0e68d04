"""Command line: ``python -m <package> flows | run | results | diagram | doctor | clusters``, and the commands flows add.

Every command that computes makes its run plan first (``plan.py``), so whatever the
command line, the settings or the sizes refuse stops it with one line before any
cluster starts: exit 2 for what the user gave, 1 for a Coiled, gateway or scheduler out
of reach, 128 + N for a signal.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import signals
from .contract import FlowCommand, FlowContractError, FlowDeclaration, find_flows
from .rules import BACKENDS, SettingError
from .run import CANNOT_START, EXIT_FAILED, EXIT_USAGE

PROG = f"python -m {__package__.partition('.')[0]}"
DIAGRAMS = Path("diagrams")
INSTALL_GRAPHVIZ_PACKAGE = "pip install -e '.[diagram]' or conda install -c conda-forge python-graphviz"
INSTALL_DOT = "conda install -c conda-forge graphviz, sudo apt-get install graphviz or brew install graphviz"


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
    add_cluster_option(run)
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="set a flow parameter (repeatable)"
    )
    run.add_argument(
        "--force", action="store_true", help="run on the local cluster even over this machine's limits (the estimate)"
    )
    run.add_argument(
        "--keep",
        action="store_true",
        help="keep the Coiled cluster running for the next run of the flow, until its idle timeout",
    )
    run.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write Dask's HTML performance report of the run to PATH (a new file: an existing one is refused)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="restore the flow's kept results instead of computing them, e.g. after a failed run (docs/resume.md)",
    )
    results = commands.add_parser("results", help="list the kept results that run --resume restores, or remove them")
    results.add_argument(
        "--clear", nargs="?", const="", metavar="FLOW", help="remove FLOW's kept results, or without FLOW all of them"
    )
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
    if done.failure:
        print(f"{declaration.name}: {type(done.state).__name__}: {done.failure}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{declaration.name}: {type(done.state).__name__}")
    print(done.result)
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
        sessions, _ = end_run(plan) if plan is not None else ([], None)
        print(f"{args.command}: {interrupted_line(interrupt, sessions)}", file=sys.stderr, flush=True)
        signals.reported = True
        return signals.exit_status(interrupt)
    except Exception as error:  # one line, as for a failed flow run; the cluster is closed by now
        print(f"{args.command}: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if plan is not None:
            end_run(plan)
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
    from .plan import setting
    from .results import check_location, clear, listing

    try:
        location = setting("RESULTS")
        check_location(location)
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
    return flow_command(args, flow_commands(flows)[args.command])
