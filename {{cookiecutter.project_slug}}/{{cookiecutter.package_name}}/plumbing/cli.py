"""Command line: ``python -m <package> flows | run | diagram | doctor | clusters``, and the commands flows add."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .attach import ClusterUnreachable
from .clusters import chosen_backend
from .coiled_access import CoiledUnavailable
from .command import FlowCommand
from .contract import FlowContractError, FlowDeclaration
from .diagram import DEFAULT_OUTPUT_DIR, DiagramToolsMissing, write_diagrams
from .overrides import SettingError
from .project_clusters import ALL, clusters_command
from .registry import find_flows
from .rules import BACKENDS
from .session import interrupted_line
from .signals import exit_status

PROG = f"python -m {__package__.partition('.')[0]}"
EXIT_FAILED = 1
EXIT_USAGE = 2
# Out of reach: the run never started, through no fault of the command line (exit 1).
UNREACHABLE = (CoiledUnavailable, ClusterUnreachable)


def build_parser(flows: Mapping[str, FlowDeclaration], any_flow: bool = False) -> argparse.ArgumentParser:
    """The command line; ``any_flow`` takes any flow name, for when the flows cannot be loaded
    and the reason, not a list of choices, is what to print."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
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
    diagram = commands.add_parser("diagram", help="write a PNG of each flow's task graph (needs graphviz)")
    diagram.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where to write (default: {DEFAULT_OUTPUT_DIR})"
    )
    commands.add_parser("doctor", help="check this environment against the pins before running on Coiled")
    clusters = commands.add_parser("clusters", help="list the project's running Coiled clusters, or stop them")
    clusters.add_argument(
        "--stop", nargs="?", const=ALL, metavar="NAME", help="stop the cluster NAME, or without NAME all of them"
    )
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
    """The commands the flows add, by name (registry.find_flows has refused duplicates)."""
    return {name: command for declaration in flows.values() for name, command in declaration.commands.items()}


def flow_listing(flows: Mapping[str, FlowDeclaration]) -> str:
    """Each flow with its description and its parameters' defaults, as ``flows`` prints them."""
    entries = []
    for name, declaration in flows.items():
        defaults = " ".join(f"{key}={value}" for key, value in declaration.defaults.items()) or "(none)"
        entries.append(f"{name}\n    {declaration.description}\n    parameters: {defaults}")
    return "\n".join(entries) or "(no module in flows/ declares FLOW)"


def parse_params(pairs: Sequence[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Turn NAME=VALUE pairs into typed values, using each default's type."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in defaults:
            raise ValueError(f"--param {name}: not a parameter; choose from {', '.join(defaults)}")
        default = defaults[name]
        if isinstance(default, str):
            parameters[name] = raw
        elif isinstance(default, int) and not isinstance(default, bool):
            try:
                parameters[name] = int(raw)
            except ValueError:
                raise ValueError(f"--param {name}: {raw!r} is not a whole number") from None
        else:
            try:
                parameters[name] = json.loads(raw)
            except ValueError:
                raise ValueError(f"--param {name}: {raw!r} is not a JSON value such as true, 2.5 or null") from None
    return parameters


def refused(error: ValueError | CoiledUnavailable | ClusterUnreachable) -> int:
    """One line for a run that never started: exit 2 for what the user gave (parameters,
    settings, flow modules, sizes), 1 for a Coiled that cannot be reached or refuses, and
    for a scheduler address or gateway that does not answer."""
    print(f"error: {error}", file=sys.stderr)
    return EXIT_FAILED if isinstance(error, UNREACHABLE) else EXIT_USAGE


def run_command(args: argparse.Namespace, flows: Mapping[str, FlowDeclaration]) -> int:
    from .runner import run_flow

    try:
        parameters = parse_params(args.param, flows[args.flow].defaults)
        outcome = run_flow(
            args.flow, backend=args.cluster, parameters=parameters, force=args.force, keep=args.keep, report=args.report
        )
    except (ValueError, *UNREACHABLE) as error:
        return refused(error)
    except KeyboardInterrupt as interrupt:  # run_flow has closed the clusters by the time this arrives
        return interrupted(interrupt, args.flow)
    if outcome.failure:
        print(f"{args.flow}: {type(outcome.state).__name__}: {outcome.failure}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.flow}: {type(outcome.state).__name__}")
    print(outcome.result)
    return 0


def flow_command(args: argparse.Namespace, command: FlowCommand) -> int:
    from .session import close_sessions

    try:
        with chosen_backend(args.cluster):
            print(command.run(args))
    except (ValueError, *UNREACHABLE) as error:
        return refused(error)
    except KeyboardInterrupt as interrupt:
        close_sessions()
        return interrupted(interrupt, args.command)
    except Exception as error:  # one line, as for a failed flow run; the cluster is closed by now
        print(f"{args.command}: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def project_clusters_command(args: argparse.Namespace) -> int:
    try:
        print(clusters_command(args.stop))
    except (ValueError, CoiledUnavailable) as error:
        return refused(error)
    return 0


def diagram_command(args: argparse.Namespace, flows: Mapping[str, FlowDeclaration]) -> int:
    try:
        written = write_diagrams(flows, args.output_dir)
    except (DiagramToolsMissing, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return 0


def interrupted(interrupt: KeyboardInterrupt, flow: str | None = None) -> int:
    """Say which signal ended the run and that no cluster is left; return 128 + the signal."""
    from . import signals

    signals.reported = True
    print(f"{flow + ': ' if flow else ''}{interrupted_line(interrupt)}", file=sys.stderr, flush=True)
    return exit_status(interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a flow module that cannot be loaded stops every command but ``doctor``."""
    try:
        flows, broken = find_flows(), None
    except (FlowContractError, SettingError) as error:
        flows, broken = {}, error
    except KeyboardInterrupt as interrupt:  # while the flows load: nothing has started
        return interrupted(interrupt)
    args = build_parser(flows, any_flow=broken is not None).parse_args(argv)
    if args.command == "doctor":
        from .doctor import main as doctor

        return doctor()
    if broken is not None:
        print(f"error: {broken}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "flows":
        print(flow_listing(flows))
        return 0
    if args.command == "diagram":
        return diagram_command(args, flows)
    if args.command == "clusters":
        return project_clusters_command(args)
    if args.command == "run":
        return run_command(args, flows)
    return flow_command(args, flow_commands(flows)[args.command])
