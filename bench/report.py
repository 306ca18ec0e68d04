"""Print the figures as Markdown tables, write them to JSON, and draw the ratio chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.probe import BASELINE

# The targets the template holds itself to, drawn as reference lines (not checked anywhere).
TIMESERIES_TARGET = 1.10
BATCHED_TARGET = 1.5


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _machine_line(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"{machine['date']}, {machine['cpus']} cores, {machine['memory_gib']:.0f} GiB, Python {machine['python']}, "
        f"dask {machine['dask']}, prefect {machine['prefect']}; load average "
        f"{machine['load_before'][0]:.2f} before, {machine['load_max']:.2f} at most, {machine['load_after'][0]:.2f} after; "
        f"median of {results['repeats']} runs ({results['profile']} profile)"
    )


def read_tables(results: dict[str, Any]) -> str:
    """The read path as Markdown: the machine, then the flow against plain Dask on one cluster."""
    row = results["read"]
    return "\n\n".join(
        [
            _machine_line(results),
            _table(
                ["read path", "rows", "files", "flow s", "plain Dask s", "ratio", "flow rows/s", "Dask rows/s"],
                [
                    [
                        row["size"],
                        f"{row['rows']:,}",
                        row["files"],
                        f"{row['flow_s']:.2f}",
                        f"{row['dask_s']:.2f}",
                        f"{row['ratio']:.2f}x",
                        f"{row['flow_rows_per_s'] / 1e6:.2f}M",
                        f"{row['dask_rows_per_s'] / 1e6:.2f}M",
                    ]
                ],
            ),
            _table(
                ["the flow's read, one setting changed", "seconds", f"vs {BASELINE}"],
                [
                    [label, f"{value:.2f}", f"{value / row['variants_s'][BASELINE]:.2f}x"]
                    for label, value in row["variants_s"].items()
                ],
            ),
            _table(
                ["read path, each in its own process", "flow s", "plain Dask s", "flow peak MiB", "Dask peak MiB"],
                [
                    [
                        row["size"],
                        f"{row['end_to_end_flow_s']:.2f}",
                        f"{row['end_to_end_dask_s']:.2f}",
                        f"{row['flow_peak_mib']:.0f}",
                        f"{row['dask_peak_mib']:.0f}",
                    ]
                ],
            ),
        ]
    )


def tables(results: dict[str, Any]) -> str:
    """All figures as Markdown, ready to paste into the README."""
    parts = [
        _machine_line(results),
        _table(
            ["timeseries", "rows", "flow s", "plain Dask s", "ratio", "flow rows/s", "flow peak MiB", "Dask peak MiB"],
            [
                [
                    row["size"],
                    f"{row['rows']:,}",
                    f"{row['flow_s']:.2f}",
                    f"{row['dask_s']:.2f}",
                    f"{row['ratio']:.2f}x",
                    f"{row['flow_rows_per_s'] / 1e6:.2f}M",
                    f"{row['flow_peak_mib']:.0f}",
                    f"{row['dask_peak_mib']:.0f}",
                ]
                for row in results["timeseries"]
            ],
        ),
        _table(
            ["timeseries, one warm cluster", "flow s", "plain Dask s", "ratio"],
            [
                [row["size"], f"{row['warm_flow_s']:.2f}", f"{row['warm_dask_s']:.2f}", f"{row['warm_ratio']:.2f}x"]
                for row in results["timeseries"]
            ],
        ),
        _table(
            [
                "elements",
                "flow s",
                "plain Dask s",
                "ratio",
                "overhead ms/element",
                "batch_size",
                "batched flow s",
                "batched ratio",
                "vs batched Dask",
            ],
            [
                [
                    f"{row['n']:,}",
                    f"{row['flow_s']:.2f}",
                    f"{row['dask_s']:.2f}",
                    f"{row['ratio']:.2f}x",
                    f"{row['overhead_ms_per_element']:.1f}",
                    row["batch_size"],
                    f"{row['flow_batched_s']:.2f}",
                    f"{row['batched_ratio']:.2f}x",
                    f"{row['batched_vs_batched_dask']:.2f}x",
                ]
                for row in results["mapped"]
            ],
        ),
    ]
    green = results.get("green")
    if green:
        parts.append(
            _table(
                ["time to green", "bake s", "generated suite s", "total s", "tests passed"],
                [
                    [
                        "default bake",
                        f"{green['bake_s']:.2f}",
                        f"{green['suite_s']:.2f}",
                        f"{green['total_s']:.2f}",
                        green["passed"],
                    ]
                ],
            )
        )
    return "\n\n".join(parts)


def sweep_table(rows: Sequence[dict[str, Any]]) -> str:
    """The tuning sweep: one row per variant, seconds, cluster start and peak memory."""
    return _table(
        ["variant", "seconds", "cluster start s", "peak MiB"],
        [[row["variant"], f"{row['seconds']:.2f}", f"{row['start_s']:.2f}", f"{row['peak_mib']:.0f}"] for row in rows],
    )


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def draw_chart(results: dict[str, Any], path: Path) -> None:
    """Two panels: the timeseries ratio against rows, the mapped ratios against elements."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    machine = results["machine"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    series = results["timeseries"]
    left.plot([row["rows"] for row in series], [row["ratio"] for row in series], "o-", label="end to end")
    left.plot([row["rows"] for row in series], [row["warm_ratio"] for row in series], "s-", label="on one warm cluster")
    left.axhline(TIMESERIES_TARGET, color="grey", linestyle="--", label=f"target at 1 year, {TIMESERIES_TARGET}x")
    left.set(xscale="log", xlabel="rows (1-second data)", ylabel="wall time / plain Dask", title="timeseries")
    left.set_ylim(bottom=0)
    # after the log scale is set, which resets the ticks
    left.set_xticks(
        [row["rows"] for row in series], [f"{row['size']}\n{row['rows'] / 1e6:.1f}M rows" for row in series]
    )
    left.xaxis.set_minor_formatter(NullFormatter())

    mapped = results["mapped"]
    elements = [row["n"] for row in mapped]
    right.plot(elements, [row["ratio"] for row in mapped], "o-", label="flow, one task per element")
    right.plot(elements, [row["batched_ratio"] for row in mapped], "s-", label="flow with batch_size")
    right.plot(
        elements,
        [row["batched_vs_batched_dask"] for row in mapped],
        "^:",
        label="flow with batch_size / same batches in Dask",
    )
    right.axhline(
        BATCHED_TARGET, color="grey", linestyle="--", label=f"target for batches at 10,000, {BATCHED_TARGET}x"
    )
    right.set(
        xscale="log", yscale="log", xlabel="elements", ylabel="wall time / plain Dask", title="inc-double-add-sum"
    )
    for axes in (left, right):
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(
        f"Prefect flows vs plain Dask, same LocalCluster: {machine['cpus']} cores, {machine['date']}, "
        f"load average {machine['load_before'][0]:.1f} to {machine['load_max']:.1f}",
        fontsize="medium",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
