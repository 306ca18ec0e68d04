"""Draw each flow's task graph as a PNG with Prefect's ``flow.visualize``.

Drawing needs two things pip alone cannot provide: the ``graphviz`` Python package
(the ``diagram`` extra) and Graphviz's ``dot`` program. Both are checked before any
flow is loaded or any file written, so a missing one costs the user one clear line
with the install command instead of a traceback from deep inside graphviz.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from pathlib import Path

from .contract import FlowDeclaration

DEFAULT_OUTPUT_DIR = Path("diagrams")
INSTALL_PACKAGE = "pip install -e '.[diagram]' or conda install -c conda-forge python-graphviz"
INSTALL_DOT = "conda install -c conda-forge graphviz, sudo apt-get install graphviz or brew install graphviz"


class DiagramToolsMissing(RuntimeError):
    """The graphviz Python package or Graphviz's ``dot`` program is not available."""


def missing_tools() -> list[str]:
    """What is missing to draw, each with how to install it; empty when all is there."""
    missing = []
    if importlib.util.find_spec("graphviz") is None:
        missing.append(f"the graphviz Python package ({INSTALL_PACKAGE})")
    if shutil.which("dot") is None:
        missing.append(f"Graphviz's dot program on PATH ({INSTALL_DOT})")
    return missing


def write_diagrams(flows: Mapping[str, FlowDeclaration], output_dir: Path = DEFAULT_OUTPUT_DIR) -> list[Path]:
    """Write ``<output_dir>/<flow>.png`` for every flow; returns the files written."""
    missing = missing_tools()
    if missing:
        raise DiagramToolsMissing("drawing diagrams needs " + " and ".join(missing))
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, declaration in flows.items():
        # graphviz appends the format to the name and deletes its intermediate source file.
        declaration.flow.visualize(filename=str(output_dir / name), format="png")
        written.append(output_dir / f"{name}.png")
    return written
