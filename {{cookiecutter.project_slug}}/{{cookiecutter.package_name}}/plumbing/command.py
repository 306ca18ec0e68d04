"""Commands a flow adds to the command line, and the cluster they compute on.

A flow that needs more than ``run`` (preparing its input data, say) declares
``commands={"name": FlowCommand(...)}``; the command line offers each one as
``python -m <package> name`` with a ``--cluster`` option, and deleting the flow's
module removes its commands too: nothing in this package names them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .clusters import cluster_spec, resolve_backend
from .session import ClusterSession

RESERVED = ("flows", "run", "diagram", "doctor", "clusters")  # the command line's own commands


@dataclass(frozen=True)
class FlowCommand:
    """One command: ``arguments`` adds its options to its parser, ``run`` does the work and returns a line to print.

    ``run`` raises ValueError for arguments that cannot work (exit 2, before any
    cluster starts if it checks them first); anything else it raises exits 1.
    """

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], str]


@contextmanager
def cluster_client(purpose: str) -> Iterator[Any]:
    """A client of a cluster on the chosen backend, closed when the block ends, however it ends."""
    backend = resolve_backend()
    session = ClusterSession(cluster_spec(backend, purpose), logging.getLogger(f"{__package__}.{purpose}"))
    try:
        yield session.open()
    finally:
        session.close()
