"""Sizes of a run, checked before anything starts against what this machine can finish.

A run that cannot finish here should say so in a second, not after minutes of swapping,
a ``MemoryError`` or a day of retry waits with a cluster up. Each check compares a size
with a limit derived from the machine (cores, memory) and a time budget for one local
run (docs/design.md, "Limits"). On the local backend a run over a limit is refused with
one line giving the size and how to proceed, unless forced; on a remote backend the
machine running the flow is not the one computing, so the estimate is only logged.
A flow adds its own sizes with ``declare(..., estimate=...)``; the worker layout and the
retry waits are checked here for every flow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# One local run should finish within this; beyond it, a remote cluster or smaller input.
LOCAL_BUDGET_SECONDS = 300
# A run may hold at most this share of the machine's memory; the rest is the OS's and the user's.
MEMORY_SHARE = 0.5
# Worker processes per core: more only queue for the same cores, and each costs memory and start time.
WORKERS_PER_CORE = 2
# Threads in all per core: more only contend for the same cores.
THREADS_PER_CORE = 4


@dataclass(frozen=True)
class Machine:
    """What this machine offers a local run."""

    cores: int
    memory_bytes: int
    seconds: float = LOCAL_BUDGET_SECONDS  # the time budget of one local run

    @classmethod
    def here(cls) -> Machine:
        import psutil

        return cls(os.cpu_count() or 1, psutil.virtual_memory().total)

    @property
    def memory_budget(self) -> float:
        return self.memory_bytes * MEMORY_SHARE


@dataclass(frozen=True)
class Estimate:
    """One size of a run, its limit on this machine, and how to proceed when it is over."""

    what: str  # e.g. "rows", "task runs"
    size: float
    limit: float
    advice: str  # e.g. "use a smaller window"

    @property
    def over(self) -> bool:
        return self.size > self.limit

    def describe(self) -> str:
        return f"{self.size:,.0f} {self.what} (limit here {self.limit:,.0f})"


Estimator = Callable[[Mapping[str, Any], Machine], Iterable[Estimate]]


class TooBig(ValueError):
    """A run over a local limit; the message gives the size and the ways to proceed."""


def layout_estimates(cluster_kwargs: Mapping[str, Any], machine: Machine) -> list[Estimate]:
    """Worker processes and threads of the local cluster against the cores."""
    workers = int(cluster_kwargs.get("n_workers", 1))
    threads = workers * int(cluster_kwargs.get("threads_per_worker", 1))
    advice = "set fewer workers or threads (settings.py LOCAL_DEFAULTS or their environment variables)"
    found = [Estimate("worker threads", threads, THREADS_PER_CORE * machine.cores, advice)]
    if cluster_kwargs.get("processes", True):
        found.append(Estimate("worker processes", workers, WORKERS_PER_CORE * machine.cores, advice))
    return found


def retry_wait_estimate(flow: Any, machine: Machine) -> Estimate:
    """The longest a failing task keeps the run (and its cluster) waiting between its attempts."""
    waits = [
        task.max_retries * (task.retry_delay or timedelta()).total_seconds()
        for task in flow.tasks
        if getattr(task, "max_retries", 0)
    ]
    return Estimate(
        "seconds of retry waits per task",
        max(waits, default=0),
        machine.seconds,
        "lower the retry delay (RETRY_DELAY_SECONDS)",
    )


def check(estimates: Iterable[Estimate], *, local: bool, force: bool, logger: logging.Logger, flow_name: str) -> None:
    """Log every estimate; raise TooBig for the first over its limit when local and not forced."""
    estimates = list(estimates)
    logger.info("%s estimate: %s", flow_name, "; ".join(estimate.describe() for estimate in estimates))
    over = [estimate for estimate in estimates if estimate.over]
    if over and local and not force:
        first = over[0]
        raise TooBig(
            f"{flow_name}: {first.describe()} is more than this machine finishes in a local run; "
            f"{first.advice}, run it on Coiled (--cluster coiled), or pass --force"
        )
