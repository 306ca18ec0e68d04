"""The three measurements of ``make bench``, plus the tuning sweep behind the defaults."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import median
from time import perf_counter
from typing import Any

import numpy as np

from bench.children import TEMPLATE_ROOT, probe
from bench.probe import rotated
from bench.profiles import Profile, batch_size_for

sys.path.insert(0, str(TEMPLATE_ROOT / "tests"))
# The one way this repo bakes; package_of is re-exported for __main__.
from bakery import bake, package_of, run_generated_tests  # noqa: E402, F401

MIB = 2**20
Progress = Callable[[str], None]


def _same_summary(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return (
        first["index"] == second["index"]
        and first["columns"] == second["columns"]
        and np.allclose(first["data"], second["data"], rtol=1e-9, atol=0.0)
    )


def timeseries(project: Path, package: str, profile: Profile, say: Progress) -> list[dict[str, Any]]:
    """The flow against plain Dask: end to end, each side in its own process with its own
    cluster, alternating; then both in turn on one warm cluster, which leaves Prefect's
    own cost (the cluster start and close are in neither)."""
    rows = []
    for label, parameters in profile.timeseries:
        runs: dict[str, list[Any]] = {"flow": [], "dask": []}
        for round_ in range(profile.repeats):
            for side in rotated(list(runs), round_):
                runs[side].append(probe(project, package, f"timeseries-{side}", {"parameters": parameters}))
            flow, dask = runs["flow"][-1].payload, runs["dask"][-1].payload
            if not _same_summary(flow["summary"], dask["summary"]):
                raise RuntimeError(f"timeseries {label}: the flow and plain Dask computed different summaries")
            say(f"timeseries {label} round {round_ + 1}: flow {flow['seconds']:.2f} s, dask {dask['seconds']:.2f} s")
        shared = probe(project, package, "timeseries-shared", {"parameters": parameters, "repeats": profile.repeats})
        if not _same_summary(*shared.payload["summaries"].values()):
            raise RuntimeError(
                f"timeseries {label} on one cluster: the flow and plain Dask computed different summaries"
            )
        warm = {side: median(values) for side, values in shared.payload["seconds"].items()}
        say(f"timeseries {label} on one warm cluster: flow {warm['flow']:.2f} s, dask {warm['dask']:.2f} s")
        seconds = {side: median(p.payload["seconds"] for p in probed) for side, probed in runs.items()}
        peak = {side: median(p.peak_bytes for p in probed) / MIB for side, probed in runs.items()}
        count = runs["flow"][0].payload["rows"]
        rows.append(
            {
                "size": label,
                "parameters": parameters,
                "rows": count,
                "flow_s": seconds["flow"],
                "dask_s": seconds["dask"],
                "ratio": seconds["flow"] / seconds["dask"],
                "runs": {side: [p.payload["seconds"] for p in probed] for side, probed in runs.items()},
                "flow_rows_per_s": count / seconds["flow"],
                "dask_rows_per_s": count / seconds["dask"],
                "flow_peak_mib": peak["flow"],
                "dask_peak_mib": peak["dask"],
                "warm_flow_s": warm["flow"],
                "warm_dask_s": warm["dask"],
                "warm_ratio": warm["flow"] / warm["dask"],
                "warm_runs": shared.payload["seconds"],
            }
        )
    return rows


def read_path(project: Path, package: str, profile: Profile, out: Path, say: Progress) -> dict[str, Any]:
    """The flow reading a Parquet dataset against plain Dask's read_parquet and groupby.

    The dataset is written once by the project's ``sample-data``. Each side then runs end
    to end in its own process with its own cluster (its peak memory), and both in turn
    on one warm cluster in one process (the ratio: what the flow adds to the same read).
    """
    label, options = profile.read
    path = out / "read-data"
    written = probe(project, package, "read-write", {"path": str(path), "parameters": options}).payload
    files = len(list(path.glob("*.parquet")))
    say(f"read path {label}: {files} Parquet files written in {written['seconds']:.2f} s")
    runs: dict[str, list[Any]] = {"flow": [], "dask": []}
    cases = {"flow": "timeseries-flow", "dask": "read-dask"}
    spec = {"parameters": {"source": str(path)}, "path": str(path)}
    for round_ in range(profile.repeats):
        for side in rotated(list(runs), round_):
            runs[side].append(probe(project, package, cases[side], spec))
        flow, dask = runs["flow"][-1].payload, runs["dask"][-1].payload
        if not _same_summary(flow["summary"], dask["summary"]):
            raise RuntimeError(f"read path {label}: the flow and plain Dask computed different summaries")
        say(f"read path {label} round {round_ + 1}: flow {flow['seconds']:.2f} s, dask {dask['seconds']:.2f} s")
    shared = probe(project, package, "read-shared", {"path": str(path), "repeats": profile.repeats}).payload
    first, *others = shared["summaries"].values()
    if not all(_same_summary(first, other) for other in others):
        raise RuntimeError(f"read path {label} on one cluster: the flow, its variants and plain Dask disagree")
    shutil.rmtree(path)
    warm = {side: median(values) for side, values in shared["seconds"].items()}
    say(f"read path {label} on one warm cluster: flow {warm['flow']:.2f} s, dask {warm['dask']:.2f} s")
    count = runs["flow"][0].payload["rows"]
    return {
        "size": label,
        "options": options,
        "rows": count,
        "files": files,
        "write_s": written["seconds"],
        "flow_s": warm["flow"],
        "dask_s": warm["dask"],
        "ratio": warm["flow"] / warm["dask"],
        "flow_rows_per_s": count / warm["flow"],
        "dask_rows_per_s": count / warm["dask"],
        "warm_runs": shared["seconds"],
        "variants_s": {side: value for side, value in warm.items() if side not in ("flow", "dask")},
        "end_to_end_flow_s": median(p.payload["seconds"] for p in runs["flow"]),
        "end_to_end_dask_s": median(p.payload["seconds"] for p in runs["dask"]),
        "flow_peak_mib": median(p.peak_bytes for p in runs["flow"]) / MIB,
        "dask_peak_mib": median(p.peak_bytes for p in runs["dask"]) / MIB,
    }


def mapped(project: Path, package: str, profile: Profile, say: Progress) -> list[dict[str, Any]]:
    """``inc-double-add-sum`` per element and batched, against the same graphs in plain Dask."""
    rows = []
    for n in profile.elements:
        batch_size = batch_size_for(n)
        spec = {"n": n, "batch_size": batch_size, "repeats": profile.repeats}
        runs = probe(project, package, "mapped", spec).payload["seconds"]
        seconds = {name: median(values) for name, values in runs.items()}
        say(f"inc-double-add-sum n={n}: " + ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items()))
        rows.append(
            {
                "n": n,
                "batch_size": batch_size,
                **{f"{name}_s": value for name, value in seconds.items()},
                "ratio": seconds["flow"] / seconds["dask"],
                "overhead_ms_per_element": 1000 * (seconds["flow"] - seconds["dask"]) / n,
                "batched_ratio": seconds["flow_batched"] / seconds["dask"],
                "batched_vs_batched_dask": seconds["flow_batched"] / seconds["dask_batched"],
                "runs": runs,
            }
        )
    return rows


def time_to_green(profile: Profile, say: Progress) -> dict[str, Any]:
    """Bake the default project and run its test suite, as a new user would."""
    bakes, suites, summary = [], [], ""
    for round_ in range(profile.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-green-") as scratch:
            start = perf_counter()
            project = bake(Path(scratch))
            baked = perf_counter()
            done = run_generated_tests(project, *profile.green_args)
            bakes.append(baked - start)
            suites.append(perf_counter() - baked)
        summary = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode != 0:
            raise RuntimeError(f"the generated suite failed: {done.stdout[-3000:]}{done.stderr[-2000:]}")
        say(f"time to green round {round_ + 1}: bake {bakes[-1]:.2f} s, suite {suites[-1]:.2f} s ({summary})")
    passed = re.search(r"(\d+) passed", summary)
    return {
        "bake_s": median(bakes),
        "suite_s": median(suites),
        "total_s": median(b + s for b, s in zip(bakes, suites)),
        "passed": int(passed.group(1)) if passed else 0,
        "pytest_args": list(profile.green_args),
    }


def sweep(
    project: Path, package: str, profile: Profile, baseline: dict[str, Any], say: Progress
) -> list[dict[str, Any]]:
    """Vary one setting at a time from ``baseline`` (the project's defaults) on plain Dask.

    Each round runs every variant once, in a fresh process, in a rotated order, so a
    change in the machine's load spreads over all variants instead of favouring some.
    """
    variants = {"defaults": baseline}
    variants |= {f"layout {_layout_label(layout)}": {**baseline, "layout": layout} for layout in profile.sweep_layouts}
    variants |= {f"partition_freq {freq}": {**baseline, "partition_freq": freq} for freq in profile.sweep_partitions}
    variants |= {"split_out auto": {**baseline, "split_out": None}, "persist": {**baseline, "persist": True}}
    variants = {label: settings for label, settings in variants.items() if label == "defaults" or settings != baseline}
    runs: dict[str, list[Any]] = {label: [] for label in variants}
    for round_ in range(profile.repeats):
        for label in rotated(list(variants), round_):
            settings = variants[label]
            env = {f"{package.upper()}_LOCAL_{key.upper()}": value for key, value in settings["layout"].items()}
            runs[label].append(probe(project, package, "sweep", _sweep_spec(profile, settings), env))
            say(f"sweep round {round_ + 1} {label}: {runs[label][-1].payload['seconds']:.2f} s")
    return [
        {
            "variant": label,
            **variants[label],
            "seconds": median(p.payload["seconds"] for p in runs[label]),
            "start_s": median(p.payload["start_s"] for p in runs[label]),
            "runs": [p.payload["seconds"] for p in runs[label]],
            "peak_mib": median(p.peak_bytes for p in runs[label]) / MIB,
        }
        for label in variants
    ]


def _sweep_spec(profile: Profile, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": {**profile.sweep_window, "partition_freq": settings["partition_freq"]},
        "split_out": settings["split_out"],
        "persist": settings["persist"],
    }


def _layout_label(layout: dict[str, str]) -> str:
    kind = "processes" if layout["processes"] == "true" else "threads"
    return f"{layout['n_workers']}x{layout['threads_per_worker']} {kind}"
