"""One measurement in a fresh process: ``python -m bench.probe PACKAGE CASE JSON``.

The parent samples this process tree's memory while it runs; the figures come back
as one ``BENCH-RESULT <json>`` line on stdout (Prefect logs share stdout). Every
computation is built from the baked package's own functions, so the flow and its
plain-Dask baseline compute exactly the same thing.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from time import perf_counter, sleep
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
BASELINE = "the flow's read alone"  # read_variants' reference: the flow's settings, without Prefect


def _module(package: str, name: str) -> Any:
    return import_module(f"{package}.{name}")


def _window(package: str, parameters: dict[str, Any]) -> Any:
    """The synthetic window of the timeseries flow's defaults with ``parameters`` over them."""
    window = _module(package, "flows.timeseries_window")
    return window.validate_window(**{**window.WINDOW_DEFAULTS, **parameters})


def _frame_payload(summary: Any, seconds: float) -> dict[str, Any]:
    return {"seconds": seconds, "rows": int(summary["id_count"].sum()), "summary": summary.to_dict("split")}


def tidy(summary: Any) -> Any:
    """Plain Dask's per-name table laid out as the flow's (``column_statistic`` headers, sorted by name), to compare."""
    summary = summary.copy()
    summary.columns = [f"{column}_{statistic}" for column, statistic in summary.columns]
    return summary.sort_index()


def rotated(names: list[str], round_: int) -> list[str]:
    """``names`` in the order of one round: each round starts one further along, so no side always goes first."""
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def _cluster_spec(package: str, name: str) -> Any:
    """The embedded cluster's spec, as a flow run on it gets it."""
    return _module(package, "plumbing.plan").cluster_spec("local", name)


def _flow_summary(package: str, parameters: dict[str, Any], lent: Any = None) -> Any:
    """The ``timeseries`` flow's summary, as ``python -m <package> run`` computes it; on the ``lent``
    cluster spec instead of its own, when given (its plan is the run's, with that one spec)."""
    from dataclasses import replace

    plumbing, run = _module(package, "plumbing"), _module(package, "plumbing.run")
    if lent is None:
        outcome = plumbing.run_flow("timeseries", parameters, cluster="local")
    else:
        declaration = _module(package, "flows.timeseries").FLOW
        plan = _module(package, "plumbing.plan").plan_run(declaration, parameters, cluster="local")
        outcome = run.outcome(declaration.flow.run(plan=replace(plan, spec=lent)), declaration)
    if outcome.failure:
        raise SystemExit(f"timeseries flow failed: {outcome.failure}")
    return outcome.result


def _warm_up(ts: Any, window: Any, client: Any) -> None:
    """One partition's summary, untimed, so the workers have imported what the summary needs."""
    client.compute(ts.summary_graph(ts.load_timeseries(window).partitions[:1])).result()


def timeseries_flow(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The ``timeseries`` flow end to end, as ``python -m <package> run`` runs it.

    Its module is imported before the clock starts, as on the plain-Dask side: imports
    are the same for both, and a long-lived process pays them once.
    """
    _module(package, "flows.timeseries")
    start = perf_counter()
    summary = _flow_summary(package, spec["parameters"])
    return _frame_payload(summary, perf_counter() - start)


def timeseries_dask(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The same load and groupby in plain Dask, on a cluster from the same spec."""
    from distributed import Client

    ts = _module(package, "flows.timeseries")
    window = _window(package, spec["parameters"])
    start = perf_counter()
    cluster_spec = _cluster_spec(package, ts.FLOW.name)
    with cluster_spec.start() as cluster, Client(cluster) as client:
        summary = ts.summarize_frame(ts.load_timeseries(window), client)
    return _frame_payload(summary, perf_counter() - start)


class _Lent:
    """A running cluster lent to flow runs: their sessions "close" it, its owner really does."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def close(self) -> None:
        pass


def _on_one_cluster(
    package: str,
    repeats: int,
    parameters: dict[str, Any],
    others: dict[str, Callable[[Any], Any]],
    warm_up: Callable[[Any], Any],
) -> dict[str, Any]:
    """The flow (with ``parameters``) and each of ``others(client)`` in turn on one warm cluster.

    Against plain Dask (``others["dask"]``) this is what Prefect adds; other entries are
    variants of the flow's own computation, each with one setting changed.

    The flow's run plan gets a cluster spec that lends this cluster, so its resource,
    session, version check and closing report all run as usual; the cluster's start and
    close are in neither timing.
    """
    from dataclasses import replace

    from distributed import Client

    ts = _module(package, "flows.timeseries")
    seconds: dict[str, list[float]] = {"flow": [], **{name: [] for name in others}}
    summaries: dict[str, Any] = {}
    owned = _cluster_spec(package, ts.FLOW.name)
    with owned.start() as cluster, Client(cluster) as client:
        lent = replace(owned, cluster_class=lambda **_: _Lent(cluster))
        warm_up(client)
        for round_ in range(repeats):
            for side in rotated(list(seconds), round_):
                start = perf_counter()
                summaries[side] = _flow_summary(package, parameters, lent) if side == "flow" else others[side](client)
                seconds[side].append(perf_counter() - start)
                if side == "flow":
                    client.run(_resume)  # a run's end pauses its cluster's workers: this one is lent, not closed
                settle(cluster.scheduler_address)
    return {"seconds": seconds, "summaries": {side: summary.to_dict("split") for side, summary in summaries.items()}}


def timeseries_shared(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The synthetic timeseries: the flow and plain Dask in turn on one warm cluster."""
    ts, window = _module(package, "flows.timeseries"), _window(package, spec["parameters"])
    return _on_one_cluster(
        package,
        spec["repeats"],
        spec["parameters"],
        {"dask": lambda client: ts.summarize_frame(ts.load_timeseries(window), client)},
        lambda client: _warm_up(ts, window, client),
    )


def read_write(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The read path's dataset, written once with the project's own ``sample-data`` command."""
    cli = _module(package, "plumbing.cli")
    options = [f"--{name.replace('_', '-')}={value}" for name, value in spec["parameters"].items()]
    start = perf_counter()
    if cli.main(["sample-data", spec["path"], *options, "--overwrite", "--cluster", "local"]) != 0:
        raise SystemExit("sample-data failed")
    return {"seconds": perf_counter() - start}


def plain_read(package: str, path: str, client: Any) -> Any:
    """Plain Dask as a user writes it: read_parquet, then the flow's aggregations (tidied alike to compare)."""
    import dask.dataframe as dd

    ts = _module(package, "flows.timeseries")
    return tidy(client.compute(dd.read_parquet(path).groupby("name").agg(ts.AGGREGATIONS)).result())


def read_dask(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Plain Dask's read and summary end to end, on its own cluster from the flow's spec."""
    from distributed import Client

    ts = _module(package, "flows.timeseries")
    start = perf_counter()
    cluster_spec = _cluster_spec(package, ts.FLOW.name)
    with cluster_spec.start() as cluster, Client(cluster) as client:
        summary = plain_read(package, spec["path"], client)
    return _frame_payload(summary, perf_counter() - start)


def read_variants(package: str, path: str) -> dict[str, Callable[[Any], Any]]:
    """The flow's own read and summary with one of its settings changed: what each setting is worth."""
    import dask.dataframe as dd

    ts = _module(package, "flows.timeseries")
    urls = list(_module(package, "flows.timeseries_source").inspect_source(path, ts.COLUMNS, ts.NUMBERS).urls)

    def variant(split_out: int | None = ts.SPLIT_OUT, **read: Any) -> Callable[[Any], Any]:
        options = {"columns": ts.COLUMNS, "index": False, **read}
        graph = dd.read_parquet(urls, **options).groupby("name").agg(ts.AGGREGATIONS, split_out=split_out)
        return lambda client: tidy(client.compute(graph).result())

    return {
        BASELINE: variant(),
        "split_out auto": variant(split_out=None),
        "timestamp index read too": variant(index=None),
        "every column read": variant(columns=None),
    }


def read_shared(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The flow with ``source=`` the dataset, plain Dask's read and the flow's variants in turn on one warm cluster."""
    first = sorted(Path(spec["path"]).glob("*.parquet"))[0]
    others = {"dask": lambda client: plain_read(package, spec["path"], client), **read_variants(package, spec["path"])}
    return _on_one_cluster(
        package,
        spec["repeats"],
        {"source": spec["path"]},
        others,
        lambda client: plain_read(package, str(first), client),  # workers import what reading needs
    )


def _resume(dask_worker: Any) -> None:
    from distributed.core import Status

    if dask_worker.status == Status.paused:
        dask_worker.status = Status.running


def _each(function: Callable[[int], int], batch: list[int]) -> list[int]:
    return [function(x) for x in batch]


def _pairwise(function: Callable[[int, int], int], xs: list[int], ys: list[int]) -> list[int]:
    return list(map(function, xs, ys))


def _total(batches: list[list[int]]) -> int:
    return sum(sum(batch) for batch in batches)


def mapped_dask(mapped: Any, address: str, n: int, batch_size: int) -> int:
    """The flow's graph in plain ``dask.delayed``: split, inc and double per batch, add, sum."""
    from dask import delayed
    from distributed import Client

    batches = mapped.batches_of(n, batch_size)
    incs = [delayed(_each)(mapped.inc, batch) for batch in batches]
    doubles = [delayed(_each)(mapped.double, batch) for batch in batches]
    adds = [delayed(_pairwise)(mapped.add, xs, ys) for xs, ys in zip(incs, doubles)]
    with Client(address) as client:
        return client.compute(delayed(_total)(adds)).result()


def mapped_flow(mapped: Any, address: str, n: int, batch_size: int) -> int:
    """The ``inc-double-add-sum`` flow through Prefect's DaskExecutor on the same cluster."""
    from prefect.executors import DaskExecutor

    state = mapped.flow.run(parameters={"n": n, "batch_size": batch_size}, executor=DaskExecutor(address=address))
    if not state.is_successful():
        raise SystemExit(f"inc-double-add-sum failed: {state.message}")
    return state.result[mapped.FLOW.result].result


def _scheduler_tasks(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def settle(address: str, limit: float = 120.0) -> None:
    """Wait until the scheduler has forgotten the last run's tasks, then collect garbage.

    Releasing 30,000 keys takes seconds; without this the next variant pays for it.
    """
    from distributed import Client

    with Client(address) as client:
        deadline = perf_counter() + limit
        while client.run_on_scheduler(_scheduler_tasks) and perf_counter() < deadline:
            sleep(0.1)
        client.run(gc.collect)
    gc.collect()  # the scheduler lives in this process


def mapped_variants(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Time each variant ``repeats`` times on one cluster, rotating their order each round."""
    mapped = _module(package, "flows.inc_double_add_sum")
    n, batched = spec["n"], spec["batch_size"]
    variants = {
        "dask": (mapped_dask, 1),
        "flow": (mapped_flow, 1),
        "dask_batched": (mapped_dask, batched),
        "flow_batched": (mapped_flow, batched),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with _cluster_spec(package, mapped.FLOW.name).start() as cluster:
        for run, batch_size in variants.values():  # untimed: workers import what each variant needs
            run(mapped, cluster.scheduler_address, min(n, 10), batch_size)
        for round_ in range(spec["repeats"]):
            for name in rotated(list(variants), round_):
                run, batch_size = variants[name]
                start = perf_counter()
                total = run(mapped, cluster.scheduler_address, n, batch_size)
                seconds[name].append(perf_counter() - start)
                if total != mapped.expected_total(n):
                    raise SystemExit(f"{name} computed {total}, expected {mapped.expected_total(n)}")
                settle(cluster.scheduler_address)
    return {"seconds": seconds}


def sweep_variant(package: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Plain-Dask summary under one tuning variant, timed once on a warmed-up cluster.

    The cluster's start (until its client connects) is timed on its own. The layout
    arrives through the project's LOCAL_* variables, set by the parent.
    """
    from distributed import Client

    ts = _module(package, "flows.timeseries")
    window = _window(package, spec["parameters"])
    started = perf_counter()
    with (
        _cluster_spec(package, ts.FLOW.name).start() as cluster,
        Client(cluster) as client,
    ):
        start_s = perf_counter() - started
        _warm_up(ts, window, client)
        start = perf_counter()
        frame = ts.load_timeseries(window)
        if spec["persist"]:
            frame = client.persist(frame)
        client.compute(frame.groupby("name").agg(ts.AGGREGATIONS, split_out=spec["split_out"])).result()
        return {"seconds": perf_counter() - start, "start_s": start_s}


CASES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "timeseries-flow": timeseries_flow,
    "timeseries-dask": timeseries_dask,
    "timeseries-shared": timeseries_shared,
    "read-write": read_write,
    "read-dask": read_dask,
    "read-shared": read_shared,
    "mapped": mapped_variants,
    "sweep": sweep_variant,
}


def main(argv: list[str]) -> int:
    package, case, spec = argv[0], argv[1], json.loads(argv[2])
    logging.getLogger("distributed").setLevel(logging.ERROR)
    payload = CASES[case](package, spec)
    print(RESULT_PREFIX + json.dumps(payload), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
