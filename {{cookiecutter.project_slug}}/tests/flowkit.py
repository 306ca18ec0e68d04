"""What the generic tests know of the project's flows: each one's declaration, found as the CLI finds them."""

from __future__ import annotations

import json

from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration
from {{ cookiecutter.package_name }}.plumbing.registry import find_flows

PACKAGE = find_flows.__module__.partition(".")[0]
FLOWS = find_flows()


def smoke_args(declaration: FlowDeclaration) -> list[str]:
    """The flow's smoke parameters as ``--param NAME=VALUE`` arguments (text as is, the rest as JSON)."""
    pairs = [
        f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in declaration.smoke.items()
    ]
    return [arg for pair in pairs for arg in ("--param", pair)]
