"""Backend selection and cluster arguments, checked against the real classes' signatures."""

from __future__ import annotations

import inspect
import re
import sys

import pytest

from {{ cookiecutter.package_name }}.plumbing import session
from {{ cookiecutter.package_name }}.plumbing.choices import KEEP
from {{ cookiecutter.package_name }}.plumbing.clusters import (
    BACKEND_VAR,
    DEFAULT_BACKEND,
    ClusterConfigError,
    cluster_spec,
    coiled_cluster_kwargs,
    kept_name,
    local_cluster_kwargs,
    resolve_backend,
)
from {{ cookiecutter.package_name }}.plumbing.rules import NAME
from {{ cookiecutter.package_name }}.settings import CONNECT_TIMEOUT_SECONDS, ENV_PREFIX

from flowkit import PACKAGE

PROJECT = {{ cookiecutter.project_slug | literal }}
WORKSPACE = {{ cookiecutter.coiled_workspace | literal }}
REGION = {{ cookiecutter.coiled_region | literal }}


def test_explicit_choice_beats_environment_and_default() -> None:
    assert resolve_backend("coiled", {BACKEND_VAR: "local"}) == "coiled"
    assert resolve_backend("local", {BACKEND_VAR: "coiled"}) == "local"


def test_an_address_follows_the_same_precedence_as_a_backend_name() -> None:
    """An address where a backend name goes means: attach to that running cluster."""
    address, other = "tcp://10.0.0.5:8786", "tls://scheduler.example.com:8786"
    assert resolve_backend(address, {BACKEND_VAR: other}) == address
    assert resolve_backend("local", {BACKEND_VAR: other}) == "local"
    assert resolve_backend(None, {BACKEND_VAR: other}) == other
    assert resolve_backend(None, {BACKEND_VAR: " 127.0.0.1:8786 "}) == "127.0.0.1:8786"
    assert resolve_backend(None, {BACKEND_VAR: "gateway"}) == "gateway"


def test_environment_beats_default() -> None:
    other = "coiled" if DEFAULT_BACKEND == "local" else "local"
    assert resolve_backend(None, {BACKEND_VAR: other}) == other


def test_baked_default_applies_when_nothing_is_said() -> None:
    assert resolve_backend(None, {}) == DEFAULT_BACKEND == "{{ cookiecutter.default_cluster }}"


@pytest.mark.parametrize(
    ("explicit", "environ", "source"),
    [
        ("kubernetes", {}, "--cluster"),
        ("tcp://host", {}, "--cluster"),
        ("http://host:8786", {}, "--cluster"),
        (None, {BACKEND_VAR: "Coiled"}, BACKEND_VAR),
        (None, {BACKEND_VAR: ""}, BACKEND_VAR),
        (None, {BACKEND_VAR: "tcp://host:99999"}, BACKEND_VAR),
    ],
)
def test_unknown_backend_names_its_source_and_the_choices(explicit, environ, source) -> None:
    with pytest.raises(
        ClusterConfigError,
        match=rf"^{source}: '.*' is not allowed; choose one of local, coiled, gateway or a scheduler address such as "
        "tcp://host:8786$",
    ):
        resolve_backend(explicit, environ)


def test_an_address_spec_binds_to_client_with_the_bounded_connect() -> None:
    from distributed import Client

    spec = cluster_spec("tcp://127.0.0.1:8786", "some-flow", {})
    assert spec.attached and spec.cluster_class is Client
    bound = inspect.signature(Client).bind(**spec.kwargs, timeout=spec.connect_timeout).arguments
    assert bound == {"address": "tcp://127.0.0.1:8786", "set_as_default": False, "timeout": spec.connect_timeout}
    assert spec.connect_timeout == float(CONNECT_TIMEOUT_SECONDS)
    longer = {f"{ENV_PREFIX}CONNECT_TIMEOUT_SECONDS": "30"}
    assert cluster_spec("tcp://127.0.0.1:8786", "some-flow", longer).connect_timeout == 30


def test_gateway_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_gateway", None)  # as if not installed: importing it fails
    with pytest.raises(
        ClusterConfigError,
        match=r'^--cluster gateway: the gateway extra is not installed: pip install -e "\.\[gateway\]"$',
    ):
        cluster_spec("gateway", "some-flow", {})


def test_local_spec_binds_to_local_cluster() -> None:
    from distributed import LocalCluster

    spec = cluster_spec("local", "some-flow", {})
    assert spec.cluster_class is LocalCluster
    inspect.signature(LocalCluster).bind(**spec.kwargs)
    assert spec.kwargs["dashboard_address"] == ":0"


def test_coiled_kwargs_bind_to_the_real_coiled_cluster_signature() -> None:
    import coiled
    import dask

    with dask.config.set({"coiled.token": "a-token"}):
        spec = cluster_spec("coiled", "some-flow", {})
    assert spec.cluster_class is coiled.Cluster
    bound = inspect.signature(coiled.Cluster).bind(**spec.kwargs)
    assert bound.arguments["shutdown_on_close"] is True
    for deprecated in ("account", "software", "package_sync", "compute_purchase_option"):
        assert deprecated not in spec.kwargs


def test_coiled_workers_get_the_clients_aws_credentials_and_nothing_else_is_passed() -> None:
    """What the README promises about storage on Coiled: coiled.Cluster forwards the
    client's AWS credentials (``credentials="local"``, its default) and the project
    neither overrides that nor passes any secret of its own."""
    import coiled

    assert inspect.signature(coiled.Cluster).parameters["credentials"].default == "local"
    import dask

    with dask.config.set({"coiled.token": "a-token"}):  # a spec is only built with a token
        kwargs = cluster_spec("coiled", "some-flow", {}).kwargs
    assert "credentials" not in kwargs and "environ" not in kwargs


def test_coiled_kwargs_carry_the_answers() -> None:
    kwargs = coiled_cluster_kwargs("timeseries", {})
    assert kwargs["n_workers"] == {{ cookiecutter.coiled_n_workers }}
    assert kwargs["worker_cpu"] == {{ cookiecutter.coiled_worker_cpu }}
    assert kwargs["worker_memory"] == {{ cookiecutter.coiled_worker_memory | literal }}
    assert kwargs["idle_timeout"] == {{ cookiecutter.coiled_idle_timeout | literal }}
    assert kwargs["spot_policy"] == {{ cookiecutter.coiled_spot_policy | literal }}
    assert kwargs["tags"] == {
        "project": {{ cookiecutter.project_slug | literal }},
        "flow": "timeseries",
    }
    assert kwargs["name"].startswith({{ cookiecutter.project_slug | literal }} + "-timeseries-")
    assert kwargs.get("workspace", "") == {{ cookiecutter.coiled_workspace | literal }}
    assert kwargs.get("region", "") == {{ cookiecutter.coiled_region | literal }}


def test_without_keep_the_coiled_kwargs_are_what_they_always_were() -> None:
    kwargs = coiled_cluster_kwargs("timeseries", {})
    assert re.fullmatch(re.escape(PROJECT) + "-timeseries-[0-9a-f]{6}", kwargs.pop("name"))
    assert kwargs == {
        "n_workers": {{ cookiecutter.coiled_n_workers }},
        "worker_cpu": {{ cookiecutter.coiled_worker_cpu }},
        "worker_memory": {{ cookiecutter.coiled_worker_memory | literal }},
        "idle_timeout": {{ cookiecutter.coiled_idle_timeout | literal }},
        "no_client_timeout": "2 minutes",
        "spot_policy": {{ cookiecutter.coiled_spot_policy | literal }},
        "shutdown_on_close": True,
        "tags": {"project": PROJECT, "flow": "timeseries"},
        **({"workspace": WORKSPACE} if WORKSPACE else {}),
        **({"region": REGION} if REGION else {}),
    }


def coiled_spec(flow_name: str, environ: dict[str, str], keep: bool = False):
    import dask

    with dask.config.set({"coiled.token": "a-token"}), KEEP.chosen(keep):  # a spec is only built with a token
        return cluster_spec("coiled", flow_name, environ)


@pytest.mark.parametrize("how", ["run --keep", "COILED_KEEP=true"])
def test_a_kept_cluster_has_a_stable_name_and_outlives_its_run(how: str) -> None:
    """The real coiled.Cluster takes the kwargs: the next run of the flow finds the cluster by
    its name, closing lets go of it (shutdown_on_close=False) and the idle timeout stops it."""
    import coiled

    environ = {f"{ENV_PREFIX}COILED_KEEP": "true"} if how == "COILED_KEEP=true" else {}
    spec = coiled_spec("timeseries", environ, keep=how == "run --keep")
    bound = inspect.signature(coiled.Cluster).bind(**spec.kwargs).arguments
    assert spec.kept
    assert (bound["name"], bound["shutdown_on_close"]) == (kept_name("timeseries"), False)
    assert bound["idle_timeout"] == {{ cookiecutter.coiled_idle_timeout | literal }}
    assert "no_client_timeout" not in bound  # Coiled ignores it for a kept cluster
    assert coiled_spec("timeseries", environ, keep=how == "run --keep").kwargs["name"] == bound["name"]
    fresh = coiled_cluster_kwargs("timeseries", {})
    for changed in ("name", "shutdown_on_close", "no_client_timeout"):
        del fresh[changed]
    assert {key: value for key, value in bound.items() if key not in ("name", "shutdown_on_close")} == fresh


def test_a_kept_cluster_takes_a_fixed_name_when_one_is_set() -> None:
    spec = coiled_spec("timeseries", {f"{ENV_PREFIX}COILED_KEEP": "true", f"{ENV_PREFIX}COILED_NAME": "morning"})
    assert (spec.kwargs["name"], spec.kept) == ("morning", True)


@pytest.mark.parametrize("flow_name", ["timeseries", "My Flow: v2!", "x" * 80, "--odd--"])
def test_kept_names_follow_coileds_rules_for_any_flow_name(flow_name: str) -> None:
    name = kept_name(flow_name)
    assert NAME.fullmatch(name) and len(name) <= 63


def test_a_kept_name_is_project_dash_flow_unless_too_long_for_coiled() -> None:
    plain = f"{PROJECT}-timeseries"
    assert kept_name("timeseries") == plain if len(plain) <= 63 else kept_name("timeseries").startswith(plain[:50])


def test_flows_with_long_names_keep_clusters_of_their_own() -> None:
    assert len({kept_name("x" * 80), kept_name("x" * 80 + "y"), kept_name("x" * 81)}) == 3


def test_an_interrupted_run_says_that_its_kept_cluster_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C leaves a kept cluster running by design; the last line says so, and how to stop it."""
    spec = coiled_spec("timeseries", {}, keep=True)
    monkeypatch.setattr(session, "kept_clusters", [session.kept_line(spec)])
    monkeypatch.setattr(session, "attached_addresses", [])  # other tests of this process may have attached
    assert session.interrupted_line(KeyboardInterrupt()) == (
        f"interrupted by SIGINT; cluster {kept_name('timeseries')} is kept running by choice: Coiled stops it after "
        f"{spec.kwargs['idle_timeout']} without work; stop it now with "
        f"`python -m {PACKAGE} clusters --stop {kept_name('timeseries')}`"
    )


def test_every_coiled_setting_is_overridable_by_environment() -> None:
    environ = {
        f"{ENV_PREFIX}COILED_WORKSPACE": "team-ws",
        f"{ENV_PREFIX}COILED_REGION": "eu-west-1",
        f"{ENV_PREFIX}COILED_N_WORKERS": "7",
        f"{ENV_PREFIX}COILED_WORKER_CPU": "8",
        f"{ENV_PREFIX}COILED_WORKER_MEMORY": "32GiB",
        f"{ENV_PREFIX}COILED_IDLE_TIMEOUT": "5 minutes",
        f"{ENV_PREFIX}COILED_SPOT_POLICY": "on-demand",
        f"{ENV_PREFIX}COILED_NAME": "nightly",
        f"{ENV_PREFIX}COILED_NO_CLIENT_TIMEOUT": "5m",
    }
    kwargs = coiled_cluster_kwargs("timeseries", environ)
    assert {key: kwargs[key] for key in ("workspace", "region", "n_workers", "worker_cpu")} == {
        "workspace": "team-ws",
        "region": "eu-west-1",
        "n_workers": 7,
        "worker_cpu": 8,
    }
    assert (kwargs["worker_memory"], kwargs["idle_timeout"], kwargs["spot_policy"], kwargs["name"]) == (
        "32GiB",
        "5 minutes",
        "on-demand",
        "nightly",
    )
    assert kwargs["no_client_timeout"] == "5m"


def test_local_settings_are_overridable_by_environment() -> None:
    assert local_cluster_kwargs({})["processes"] is True
    kwargs = local_cluster_kwargs(
        {
            f"{ENV_PREFIX}LOCAL_N_WORKERS": "3",
            f"{ENV_PREFIX}LOCAL_THREADS_PER_WORKER": "2",
            f"{ENV_PREFIX}LOCAL_PROCESSES": "False",
        }
    )
    assert (kwargs["n_workers"], kwargs["threads_per_worker"], kwargs["processes"]) == (3, 2, False)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("COILED_N_WORKERS", "0", "not a whole number from 1 to"),
        ("COILED_N_WORKERS", "four", "not a whole number from 1 to"),
        ("COILED_WORKER_CPU", "-2", "not a whole number from 1 to"),
        ("COILED_SPOT_POLICY", "cheap", "choose one of spot_with_fallback, on-demand, spot"),
        ("COILED_IDLE_TIMEOUT", "soon", "not a duration"),
        ("COILED_IDLE_TIMEOUT", "0 minutes", "not a duration"),
        ("COILED_NO_CLIENT_TIMEOUT", "never", "not a duration"),
        ("COILED_WORKER_MEMORY", "16", "not a memory size of at least 1 GiB such as '16GiB'"),
        ("COILED_WORKER_MEMORY", "lots", "not a memory size of at least 1 GiB such as '16GiB'"),
        ("COILED_KEEP", "yes", "not allowed; choose one of true, false"),
    ],
)
def test_bad_coiled_override_names_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(ClusterConfigError, match=rf"^{ENV_PREFIX}{key}: .*{message}"):
        coiled_cluster_kwargs("timeseries", {f"{ENV_PREFIX}{key}": value})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("N_WORKERS", "0", "not a whole number from 1 to"),
        ("PROCESSES", "maybe", "not allowed; choose one of true, false"),
    ],
)
def test_bad_local_override_names_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(ClusterConfigError, match=rf"^{ENV_PREFIX}LOCAL_{key}: '{value}' is {message}"):
        local_cluster_kwargs({f"{ENV_PREFIX}LOCAL_{key}": value})


def _worker_log_lines() -> list[str]:
    """In a worker: log a lost heartbeat and another error through Dask's worker logger; what got out."""
    import logging

    from {{ cookiecutter.package_name }}.plumbing.local_workers import HEARTBEAT_LOST

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("distributed.worker")
    logger.addHandler(handler)
    try:
        try:
            raise OSError("stream closed")
        except OSError:
            logger.exception(HEARTBEAT_LOST)
        logger.error("any other worker error")
    finally:
        logger.removeHandler(handler)
    return seen


def test_local_workers_drop_only_the_lost_heartbeat_of_a_closing_cluster() -> None:
    from distributed import Client

    environ = {f"{ENV_PREFIX}LOCAL_N_WORKERS": "1", f"{ENV_PREFIX}LOCAL_PROCESSES": "true"}
    with cluster_spec("local", "some-flow", environ).start() as cluster:
        with Client(cluster, set_as_default=False) as client:
            # ``callback_timeout`` bounds the wait; the client's sync layer takes it, not the function.
            seen = client.run(_worker_log_lines, callback_timeout=60)
    assert list(seen.values()) == [["any other worker error"]]
