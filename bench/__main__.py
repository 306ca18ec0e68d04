"""``python -m bench [--profile full|toy] [--sweep]``: bake, measure, print, write, draw."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from bench import report, suites
from bench.children import TEMPLATE_ROOT
from bench.profiles import PROFILES, Profile
from bench.suites import bake, package_of

_loads: list[float] = []  # the 1-minute load average at each progress line


def _say(message: str) -> None:
    _loads.append(os.getloadavg()[0])
    print(f"bench: {message}", flush=True)


def _finish(machine: dict[str, Any]) -> None:
    machine["load_after"] = list(os.getloadavg())
    machine["load_max"] = max([machine["load_before"][0], *_loads, machine["load_after"][0]])


def _machine() -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dask": version("dask"),
        "prefect": version("prefect"),
        "load_before": list(os.getloadavg()),
    }


def _bake_default(out: Path) -> tuple[Path, str]:
    """A fresh default bake under ``out/project``; returns its folder and package name."""
    shutil.rmtree(out / "project", ignore_errors=True)
    project = bake(out / "project")
    return project, package_of(project)


def _project_defaults(project: Path, package: str, profile: Profile) -> dict[str, Any]:
    """The tuned defaults as the baked project has them: the sweep's starting point."""
    sys.path.insert(0, str(project))
    settings = import_module(f"{package}.settings")
    timeseries = import_module(f"{package}.flows.timeseries")
    return {
        "layout": {
            "n_workers": settings.LOCAL_N_WORKERS,
            "threads_per_worker": settings.LOCAL_THREADS_PER_WORKER,
            "processes": settings.LOCAL_PROCESSES,
        },
        "partition_freq": profile.sweep_window.get("partition_freq", timeseries.DEFAULTS["partition_freq"]),
        "split_out": timeseries.SPLIT_OUT,
        "persist": False,  # the flow computes straight from the lazy frame
    }


def run_benchmark(profile: Profile, out: Path, chart: Path) -> None:
    machine = _machine()
    project, package = _bake_default(out)
    _say(f"baked {project}; profile {profile.name}, {profile.repeats} runs each; load {machine['load_before']}")
    results: dict[str, Any] = {"profile": profile.name, "repeats": profile.repeats, "machine": machine}
    results["timeseries"] = suites.timeseries(project, package, profile, _say)
    results["mapped"] = suites.mapped(project, package, profile, _say)
    results["green"] = suites.time_to_green(profile, _say)
    _finish(machine)
    report.write_json(results, out / "results.json")
    report.write_json(results, chart.with_suffix(".json"))  # kept with the chart: the README's figures
    report.draw_chart(results, chart)
    print("\n" + report.tables(results) + "\n")
    _say(f"wrote {out / 'results.json'} and {chart}")


def run_read(profile: Profile, out: Path, record: Path) -> None:
    machine = _machine()
    project, package = _bake_default(out)
    _say(f"read path, profile {profile.name}, {profile.repeats} runs each; load {machine['load_before']}")
    results = {"profile": profile.name, "repeats": profile.repeats, "machine": machine}
    results["read"] = suites.read_path(project, package, profile, out, _say)
    _finish(machine)
    report.write_json(results, out / "read.json")
    report.write_json(results, record)  # the figures the README's read path shows
    print("\n" + report.read_tables(results) + "\n")
    _say(f"wrote {out / 'read.json'}; load {machine['load_after']}")


def run_sweep(profile: Profile, out: Path, record: Path) -> None:
    machine = _machine()
    project, package = _bake_default(out)
    baseline = _project_defaults(project, package, profile)
    _say(f"sweep from the defaults {baseline}; load {machine['load_before']}")
    rows = suites.sweep(project, package, profile, baseline, _say)
    _finish(machine)
    results = {"profile": profile.name, "repeats": profile.repeats, "machine": machine, "baseline": baseline}
    results["sweep"] = rows
    report.write_json(results, out / "sweep.json")
    report.write_json(results, record)  # kept with the chart: the figures behind the defaults
    print("\n" + report.sweep_table(rows) + "\n")
    _say(f"wrote {out / 'sweep.json'}; load {machine['load_after']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full", help="sizes and repetitions")
    parser.add_argument("--out", type=Path, default=TEMPLATE_ROOT / "build" / "bench", help="results folder")
    parser.add_argument("--chart", type=Path, help="PNG path (default: docs/benchmark.png for the full profile)")
    parser.add_argument("--sweep", action="store_true", help="vary each tuned default instead (plain Dask)")
    parser.add_argument("--read", action="store_true", help="only the read path: a Parquet dataset read back")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    # Only full runs replace the figures the README shows; other profiles keep to --out.
    kept = TEMPLATE_ROOT / "docs" if profile.name == "full" else args.out
    if args.sweep:
        run_sweep(profile, args.out, kept / "benchmark-sweep.json")
    elif args.read:
        run_read(profile, args.out, kept / "benchmark-read.json")
    else:
        run_benchmark(profile, args.out, args.chart or kept / "benchmark.png")
        run_read(profile, args.out, kept / "benchmark-read.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
