"""Find the project's flows: every module in ``flows/`` that sets ``FLOW = declare(...)``.

Discovery instead of a list means adding a flow is adding a file, and deleting an
example is deleting its files: nothing else names them.
"""

from __future__ import annotations

import importlib
import pkgutil

from .. import flows as flows_package
from .contract import FlowContractError, FlowDeclaration
from .overrides import SettingError


def find_flows() -> dict[str, FlowDeclaration]:
    """Every declared flow by name, in the order of their module names.

    Raises FlowContractError for a module that breaks the contract or cannot be imported,
    and SettingError, with the variable's own line, for a setting read at import.
    """
    found: dict[str, FlowDeclaration] = {}
    for info in sorted(pkgutil.iter_modules(flows_package.__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        where = f"flows/{info.name}.py"
        try:
            module = importlib.import_module(f"{flows_package.__name__}.{info.name}")
        except (FlowContractError, SettingError):  # their message already says what to fix
            raise
        except Exception as error:
            raise FlowContractError(f"{where} cannot be imported: {type(error).__name__}: {error}") from error
        declaration = getattr(module, "FLOW", None)
        if declaration is None:
            continue
        if not isinstance(declaration, FlowDeclaration):
            raise FlowContractError(
                f"{where}: FLOW must be the result of declare(...), not {type(declaration).__name__}"
            )
        if declaration.name in found:
            raise FlowContractError(f"{where}: another module already declares a flow named {declaration.name!r}")
        taken = {command for other in found.values() for command in other.commands}
        clash = sorted(taken & set(declaration.commands))
        if clash:
            raise FlowContractError(f"{where}: another flow already adds a command named {clash[0]!r}")
        found[declaration.name] = declaration
    return found


def find_flow(name: str) -> FlowDeclaration:
    """The flow called ``name``; FlowContractError naming the choices if there is none."""
    flows = find_flows()
    if name not in flows:
        raise FlowContractError(f"unknown flow {name!r}; choose one of {', '.join(flows) or '(none declared)'}")
    return flows[name]
