"""Read the template's pin table (``_pins`` in cookiecutter.json), the single source of pins.

``python tools/pins.py requirements [--python 3.11] [--groups runtime,dev,diagram,s3,s3-test,gateway,gateway-test]``
prints pip requirement lines for one supported Python; the Makefile installs the
template's own environment from them, so the template runs what it generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON = TEMPLATE_ROOT / "cookiecutter.json"
# The groups of the template's own environment: the generated tests of s3:// reads and
# writes (s3fs, moto's server) and of dask-gateway (its client and server) must run
# there, not skip.
TEMPLATE_GROUPS = ("runtime", "dev", "diagram", "s3", "s3-test", "gateway", "gateway-test")


def load_context(path: Path = COOKIECUTTER_JSON) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def supported_pythons(context: dict | None = None) -> list[str]:
    context = context or load_context()
    return list(context["python_version"])


def requirements(python: str, groups: list[str], context: dict | None = None) -> list[str]:
    """``name==version`` lines for ``groups`` of the pin set of ``python``."""
    context = context or load_context()
    if python not in context["_pins"]:
        raise SystemExit(
            f"python {python}: no pin set; the template supports {', '.join(context['_pins'])} "
            "(Prefect 1 needs pendulum 2, which has no build for newer Pythons)"
        )
    pins = context["_pins"][python]
    return [f"{name}=={pins[bare(name)]}" for group in groups for name in context["_requirements"][group]]


def bare(requirement: str) -> str:
    """The pinned name of a requirement: ``moto[server]`` is pinned as ``moto``."""
    return requirement.split("[")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("requirements")
    req.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    req.add_argument("--groups", default=",".join(TEMPLATE_GROUPS))
    sub.add_parser("pythons")
    args = parser.parse_args(argv)
    if args.command == "pythons":
        print(" ".join(supported_pythons()))
    else:
        print("\n".join(requirements(args.python, args.groups.split(","))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
