"""What the command line chose for one run, held where the plumbing reads it while Prefect runs the flow.

``run --keep`` and ``run --report`` concern the cluster a run starts, but the cluster
starts inside Prefect's run (a resource's setup, an executor's start), where no argument
of the command line can be passed: the runner holds each choice for the run instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class RunChoice(Generic[T]):
    """One choice of the command line, in force for the runs started inside ``chosen``."""

    def __init__(self, default: T) -> None:
        self.value = default

    @contextmanager
    def chosen(self, value: T) -> Iterator[None]:
        previous, self.value = self.value, value
        try:
            yield
        finally:
            self.value = previous


KEEP: RunChoice[bool] = RunChoice(False)  # run --keep: keep the Coiled cluster for the next run
REPORT: RunChoice[Path | None] = RunChoice(None)  # run --report PATH: Dask's performance report of the run
