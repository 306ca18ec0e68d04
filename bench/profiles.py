"""How much to measure: the full benchmark, and a toy run that proves the script works."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Sizes and repetitions of one benchmark run; every figure is a median of ``repeats``."""

    name: str
    repeats: int
    # (label, parameter overrides of the timeseries flow's defaults)
    timeseries: tuple[tuple[str, dict[str, Any]], ...]
    elements: tuple[int, ...]
    # Arguments for the generated project's pytest in the time-to-green step.
    green_args: tuple[str, ...] = ()
    # ``--sweep``: the window every tuning variant computes, and the partition sizes tried.
    sweep_window: dict[str, Any] = field(default_factory=dict)
    sweep_partitions: tuple[str, ...] = ()
    sweep_layouts: tuple[dict[str, str], ...] = ()
    # The read path: (label, sample-data options) of the Parquet dataset written once and read back.
    read: tuple[str, dict[str, Any]] = ("1 day", {"end": "2000-01-02", "partition_freq": "6h"})


# The batched variant cuts ``range(n)`` into this many batches (see the README).
BATCHES = 20

# Worker layouts compared by ``--sweep``: settings of the project's LOCAL_* variables.
LAYOUTS = (
    {"n_workers": "2", "threads_per_worker": "1", "processes": "true"},
    {"n_workers": "1", "threads_per_worker": "2", "processes": "true"},
    {"n_workers": "1", "threads_per_worker": "2", "processes": "false"},
)

FULL = Profile(
    name="full",
    repeats=3,
    timeseries=(("1 month", {"end": "2000-02-01"}), ("1 year", {"end": "2001-01-01"})),
    elements=(10, 100, 1_000, 10_000),
    sweep_window={"end": "2001-01-01"},
    sweep_partitions=("12h", "1D", "61D"),  # "auto" gives 6D: the year 2000 has 366 days, 2 x 3 x 61
    sweep_layouts=LAYOUTS,
    read=("1 year", {"end": "2001-01-01"}),  # 31.6M rows in 61 files of 6 days
)

TOY = Profile(
    name="toy",
    repeats=1,
    timeseries=(("1 day", {"end": "2000-01-02", "partition_freq": "6h"}),),
    elements=(10,),
    green_args=("tests/test_flows.py", "-k", "declares", "-n", "0"),
    sweep_window={"end": "2000-01-02", "partition_freq": "6h"},
    sweep_partitions=("12h",),
    sweep_layouts=LAYOUTS[2:],
)

PROFILES = {profile.name: profile for profile in (FULL, TOY)}


def batch_size_for(n: int) -> int:
    """The batch size that cuts ``range(n)`` into at most ``BATCHES`` batches."""
    return max(1, -(-n // BATCHES))
