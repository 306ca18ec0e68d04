"""A run's plan: where it computes (``--cluster``, then ``<PREFIX>_CLUSTER``, then settings.py), and the
cluster spec each backend gets from its own settings only, every value read through its rule.

The specs' binding to the real classes is in ``test_backends.py`` (local, address, gateway)
and ``test_coiled.py``; what every setting makes of awkward values is in ``test_settings.py``.
"""

from __future__ import annotations

import dataclasses

import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}.plumbing.plan import RunPlan, cluster_spec, plan_run, resolve_backend
from {{ cookiecutter.package_name }}.plumbing.rules import SettingError
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS

CLUSTER_VAR = f"{ENV_PREFIX}CLUSTER"
ADDRESS = "tcp://127.0.0.1:8786"


def test_explicit_choice_beats_environment_and_default() -> None:
    assert resolve_backend("coiled", {CLUSTER_VAR: "local"}) == "coiled"
    assert resolve_backend("local", {CLUSTER_VAR: "coiled"}) == "local"


def test_an_address_follows_the_same_precedence_as_a_backend_name() -> None:
    """An address where a backend name goes means: attach to that running cluster."""
    address, other = "tcp://10.0.0.5:8786", "tls://scheduler.example.com:8786"
    assert resolve_backend(address, {CLUSTER_VAR: other}) == address
    assert resolve_backend("local", {CLUSTER_VAR: other}) == "local"
    assert resolve_backend(None, {CLUSTER_VAR: other}) == other
    assert resolve_backend(None, {CLUSTER_VAR: " 127.0.0.1:8786 "}) == "127.0.0.1:8786"
    assert resolve_backend(None, {CLUSTER_VAR: "gateway"}) == "gateway"


def test_environment_beats_default() -> None:
    other = "coiled" if settings.CLUSTER == "local" else "local"
    assert resolve_backend(None, {CLUSTER_VAR: other}) == other


def test_baked_default_applies_when_nothing_is_said() -> None:
    assert resolve_backend(None, {}) == settings.CLUSTER == "{{ cookiecutter.default_cluster }}"
    assert resolve_backend("", {}) == settings.CLUSTER  # an empty --cluster is no choice


@pytest.mark.parametrize(
    ("explicit", "environ", "source"),
    [
        ("kubernetes", {}, "--cluster"),
        ("tcp://host", {}, "--cluster"),
        ("http://host:8786", {}, "--cluster"),
        (None, {CLUSTER_VAR: "Coiled"}, CLUSTER_VAR),
        (None, {CLUSTER_VAR: ""}, CLUSTER_VAR),
        (None, {CLUSTER_VAR: "tcp://host:99999"}, CLUSTER_VAR),
    ],
)
def test_unknown_backend_names_its_source_and_the_choices(explicit, environ, source) -> None:
    with pytest.raises(
        SettingError,
        match=rf"^{source}: '.*' is not allowed; choose one of local, coiled, gateway or a scheduler address such as "
        "tcp://host:8786$",
    ):
        resolve_backend(explicit, environ)


def test_local_settings_are_overridable_by_environment() -> None:
    kwargs = cluster_spec("local", "some-flow", environ={}).kwargs
    assert (kwargs["n_workers"], kwargs["threads_per_worker"], kwargs["processes"]) == (
        int(settings.LOCAL_N_WORKERS),
        int(settings.LOCAL_THREADS_PER_WORKER),
        True,
    )
    environ = {
        f"{ENV_PREFIX}LOCAL_N_WORKERS": "3",
        f"{ENV_PREFIX}LOCAL_THREADS_PER_WORKER": "2",
        f"{ENV_PREFIX}LOCAL_PROCESSES": "False",
    }
    kwargs = cluster_spec("local", "some-flow", environ=environ).kwargs
    assert (kwargs["n_workers"], kwargs["threads_per_worker"], kwargs["processes"]) == (3, 2, False)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("N_WORKERS", "0", "not a whole number from 1 to"),
        ("THREADS_PER_WORKER", "abc", "not a whole number from 1 to"),
        ("PROCESSES", "maybe", "not allowed; choose one of true, false"),
    ],
)
def test_bad_local_override_names_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingError, match=rf"^{ENV_PREFIX}LOCAL_{key}: '{value}' is {message}"):
        cluster_spec("local", "some-flow", environ={f"{ENV_PREFIX}LOCAL_{key}": value})


def test_an_address_gets_the_connect_timeout_of_its_setting() -> None:
    assert cluster_spec(ADDRESS, "some-flow", environ={}).connect_timeout == float(settings.CONNECT_TIMEOUT_SECONDS)
    longer = {f"{ENV_PREFIX}CONNECT_TIMEOUT_SECONDS": "30"}
    assert cluster_spec(ADDRESS, "some-flow", environ=longer).connect_timeout == 30


# Bad values of the settings each backend does not read.
OTHER_BACKENDS_SETTINGS = {
    "local": {"COILED_N_WORKERS": "abc", "GATEWAY_ADDRESS": "nowhere", "CONNECT_TIMEOUT_SECONDS": "0"},
    ADDRESS: {"COILED_WORKER_MEMORY": "lots", "LOCAL_N_WORKERS": "abc", "GATEWAY_N_WORKERS": "0"},
    "coiled": {"LOCAL_PROCESSES": "maybe", "CONNECT_TIMEOUT_SECONDS": "0", "GATEWAY_ADDRESS": "nowhere"},
}


@pytest.mark.parametrize("backend", list(OTHER_BACKENDS_SETTINGS), ids=["local", "address", "coiled"])
def test_a_bad_setting_of_another_backend_never_stops_a_run(backend: str) -> None:
    """A run reads its own backend's settings only: a typo in a Coiled setting never stops a local run."""
    import dask

    environ = {ENV_PREFIX + key: value for key, value in OTHER_BACKENDS_SETTINGS[backend].items()}
    with dask.config.set({"coiled.token": "a-token"}):  # a Coiled spec is only made with a token
        assert cluster_spec(backend, "some-flow", environ=environ).name == "some-flow"


@pytest.mark.parametrize("backend", ["local", ADDRESS, "gateway"], ids=["local", "address", "gateway"])
def test_keep_is_refused_for_every_cluster_but_coileds(backend: str) -> None:
    with pytest.raises(SettingError) as refused:
        cluster_spec(backend, "some-flow", keep=True, environ={})
    assert str(refused.value) == f"--keep: keeps Coiled clusters only; this run computes on the {backend} cluster"


@pytest.mark.parametrize("name", FLOWS)
def test_a_plan_holds_every_parameter_and_the_cluster_and_cannot_change(name: str, tmp_path) -> None:
    declaration = FLOWS[name]
    smoke = declaration.smoke_parameters(tmp_path)
    plan = plan_run(declaration, smoke, cluster=ADDRESS, environ={CLUSTER_VAR: "coiled"})
    assert isinstance(plan, RunPlan) and plan.flow == name
    assert dict(plan.parameters) == {**declaration.defaults, **smoke}
    assert (plan.backend, plan.spec.kwargs["address"], plan.spec.name) == ("attached", ADDRESS, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.spec = cluster_spec("local", name, environ={})  # type: ignore[misc]
    assert plan_run(declaration, smoke, cluster=ADDRESS).run_id != plan.run_id  # each run is its own


@pytest.mark.parametrize("name", FLOWS)
def test_a_refused_setting_stops_the_plan_before_anything_starts(name: str) -> None:
    with pytest.raises(SettingError, match=rf"^{ENV_PREFIX}LOCAL_N_WORKERS: 'abc' is not a whole number"):
        plan_run(FLOWS[name], cluster="local", environ={f"{ENV_PREFIX}LOCAL_N_WORKERS": "abc"})
