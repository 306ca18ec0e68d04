"""``make bench`` works: the benchmark script, at toy sizes, runs every step and writes its files.

Only the shape of the output is checked; timings are figures to read, never to assert.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import TEMPLATE_ROOT

sys.path.insert(0, str(TEMPLATE_ROOT))
from bench import report  # noqa: E402

DOCS = TEMPLATE_ROOT / "docs"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "toy", *args],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_toy_benchmark_measures_all_three_and_draws_the_chart(tmp_path: Path) -> None:
    done = bench("--out", str(tmp_path), "--chart", str(tmp_path / "chart.png"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    [series] = results["timeseries"]
    assert series["rows"] == 24 * 60 * 60  # one day of one-second data, counted by both sides
    assert {"flow_s", "dask_s", "ratio", "flow_rows_per_s", "flow_peak_mib", "dask_peak_mib"} <= set(series)
    assert series["flow_peak_mib"] > 100 and series["dask_peak_mib"] > 100  # a real process tree was sampled
    assert {"warm_flow_s", "warm_dask_s", "warm_ratio"} <= set(series)
    assert all(len(runs) == results["repeats"] for runs in series["warm_runs"].values())
    [mapped] = results["mapped"]
    assert (mapped["n"], mapped["batch_size"]) == (10, 1)
    assert {"dask_s", "flow_s", "dask_batched_s", "flow_batched_s", "overhead_ms_per_element"} <= set(mapped)
    assert results["green"]["passed"] > 0
    assert len(results["machine"]["load_before"]) == 3 and len(results["machine"]["load_after"]) == 3
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    read = json.loads((tmp_path / "read.json").read_text(encoding="utf-8"))["read"]
    assert (read["rows"], read["files"]) == (24 * 60 * 60, 4)  # sample-data's day in 6-hour files, read back
    assert {"flow_s", "dask_s", "ratio", "flow_rows_per_s", "dask_rows_per_s"} <= set(read)
    assert read["flow_peak_mib"] > 100 and read["dask_peak_mib"] > 100
    assert all(len(runs) == results["repeats"] for runs in read["warm_runs"].values())
    variants = {"the flow's read alone", "split_out auto", "timestamp index read too", "every column read"}
    assert set(read["variants_s"]) == variants
    assert not (tmp_path / "read-data").exists(), "the dataset outlived the benchmark"
    assert "| read path | rows | files |" in done.stdout
    assert (
        "| timeseries | rows |" in done.stdout
        and "| timeseries, one warm cluster |" in done.stdout
        and "| elements |" in done.stdout
        and "| time to green |" in done.stdout
    )


@pytest.mark.slow
def test_toy_sweep_varies_one_default_at_a_time(tmp_path: Path) -> None:
    done = bench("--sweep", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    variants = [row["variant"] for row in sweep["sweep"]]
    assert variants == ["defaults", "layout 1x2 threads", "partition_freq 12h", "split_out auto", "persist"]
    assert sweep["baseline"]["split_out"] == 1 and sweep["baseline"]["persist"] is False
    by_variant = {row["variant"]: row for row in sweep["sweep"]}
    assert by_variant["persist"]["persist"] is True and by_variant["split_out auto"]["split_out"] is None
    assert all(row["seconds"] > 0 and row["start_s"] > 0 and row["peak_mib"] > 0 for row in sweep["sweep"])
    assert "| variant | seconds | cluster start s | peak MiB |" in done.stdout


def test_the_benchmark_page_shows_the_figures_of_the_recorded_full_run() -> None:
    readme = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    results = json.loads((DOCS / "benchmark.json").read_text(encoding="utf-8"))
    sweep = json.loads((DOCS / "benchmark-sweep.json").read_text(encoding="utf-8"))
    assert results["profile"] == sweep["profile"] == "full"
    assert report.tables(results) in readme
    assert report.sweep_table(sweep["sweep"]) in readme
    read = json.loads((DOCS / "benchmark-read.json").read_text(encoding="utf-8"))
    assert read["profile"] == "full" and read["read"]["rows"] == 31_622_400  # a year of 1-second data
    assert report.read_tables(read) in readme
    assert "](benchmark.png)" in readme and "](docs/benchmark.png)" in (TEMPLATE_ROOT / "README.md").read_text()
    assert (DOCS / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Each row of the generated docs/design.md tables, by the sweep variant it quotes.
DESIGN_ROWS = {
    "| 2 processes x 1 thread (default) |": "defaults",
    "| 1 process x 2 threads |": "layout 1x2 processes",
    "| 2 threads in the flow's process (`processes=false`) |": "layout 1x2 threads",
    "| 6 days (what `auto` takes for a year) |": "defaults",
    "| 1 day |": "partition_freq 1D",
    "| 12 hours |": "partition_freq 12h",
    "| 61 days |": "partition_freq 61D",
}


def test_design_notes_quote_the_recorded_sweep() -> None:
    design = (TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "docs" / "design.md").read_text(encoding="utf-8")
    sweep = {row["variant"]: row for row in json.loads((DOCS / "benchmark-sweep.json").read_text())["sweep"]}
    for label, variant in DESIGN_ROWS.items():
        [line] = [line for line in design.splitlines() if line.startswith(label)]
        row = sweep[variant]
        assert f"| {row['seconds']:.1f} |" in line and f"{round(row['peak_mib']):,} MiB |" in line, line
        if "processes" in variant or "thread" in label:
            assert f"| {row['start_s']:.2f} s |" in line, line
    prose = " ".join(design.split())
    assert f"({sweep['split_out auto']['seconds']:.1f} s against {sweep['defaults']['seconds']:.1f} s)" in prose
    assert f"costs time ({sweep['persist']['seconds']:.1f} s)" in prose
