"""Command line: ``python -m {{ cookiecutter.package_name }} flows | run | diagram | doctor``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.clusters import BACKENDS, ClusterConfigError
from {{ cookiecutter.package_name }}.diagram import DEFAULT_OUTPUT_DIR, DiagramToolsMissing, write_diagrams
from {{ cookiecutter.package_name }}.flows import FLOWS

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("flows", help="list the flows and their parameters")
    run = commands.add_parser("run", help="run one flow")
    run.add_argument("flow", choices=sorted(FLOWS))
    run.add_argument("--cluster", choices=BACKENDS, help="where to compute (default: environment, then project)")
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="set a flow parameter (repeatable)"
    )
    diagram = commands.add_parser("diagram", help="write a PNG of each flow's task graph (needs graphviz)")
    diagram.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where to write (default: {DEFAULT_OUTPUT_DIR})"
    )
    commands.add_parser("doctor", help="check this environment against the pins before running on Coiled")
    return parser


def parse_params(pairs: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Turn NAME=VALUE pairs into typed values, using each default's type."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in defaults:
            raise ValueError(f"--param {name}: not a parameter; choose from {', '.join(defaults)}")
        default = defaults[name]
        if isinstance(default, bool) or not isinstance(default, int):
            parameters[name] = raw if isinstance(default, str) else json.loads(raw)
        else:
            try:
                parameters[name] = int(raw)
            except ValueError:
                raise ValueError(f"--param {name}: {raw!r} is not a whole number") from None
    return parameters


def list_flows() -> int:
    from {{ cookiecutter.package_name }}.runner import default_parameters

    for name, (_, description) in FLOWS.items():
        defaults = " ".join(f"{key}={value}" for key, value in default_parameters(name).items())
        print(f"{name}\n    {description}\n    parameters: {defaults}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.runner import default_parameters, run_flow

    try:
        parameters = parse_params(args.param, default_parameters(args.flow))
        outcome = run_flow(args.flow, backend=args.cluster, parameters=parameters)
    except (ValueError, ClusterConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # run_flow has closed the clusters by the time this arrives
        print(f"{args.flow}: interrupted; no cluster is left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.failure:
        print(f"{args.flow}: {type(outcome.state).__name__}: {outcome.failure}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.flow}: {type(outcome.state).__name__}")
    print(outcome.result)
    return 0


def diagram_command(args: argparse.Namespace) -> int:
    try:
        written = write_diagrams(args.output_dir)
    except (DiagramToolsMissing, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "flows":
        return list_flows()
    if args.command == "doctor":
        from {{ cookiecutter.package_name }}.doctor import main as doctor

        return doctor()
    if args.command == "diagram":
        return diagram_command(args)
    return run_command(args)
