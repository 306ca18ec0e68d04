"""Flows on clusters from a dask-gateway: one per run, gone when the run ends, however it ends.

A real ``dask-gateway-server`` on loopback, with its local backend (schedulers and
workers as processes of this machine, running this environment's Python with the
project importable), stands in for a team's gateway. Each flow gets a cluster from it
and computes the result it has on the embedded cluster; after that run, after a failed
task and after a Ctrl-C while the cluster starts or computes, the gateway lists no
cluster. A run without a gateway configured, or with one that is not there, stops with
one line.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import dask
import pytest
from prefect.engine.state import Failed

from {{ cookiecutter.package_name }}.plumbing.backends import gateway_loop
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.contract import find_flow
from {{ cookiecutter.package_name }}.plumbing.plan import cluster_spec
from {{ cookiecutter.package_name }}.plumbing.run import failure_message
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import (
    FLOWS,
    PACKAGE,
    WAIT_SECONDS,
    free_port,
    project_env,
    run_held_and_signalled,
    smoke_args,
    smoke_result,
)
from test_attached_cluster import fail_a_cluster_task, run_command

pytestmark = pytest.mark.skipif(
    find_spec("dask_gateway") is None or find_spec("dask_gateway_server") is None,
    reason='needs the gateway and gateway-test extras: pip install -e ".[dev,gateway,gateway-test]"',
)

ADDRESS_VAR = f"{ENV_PREFIX}GATEWAY_ADDRESS"
# The gateway server's configuration: its local backend, every server on loopback.
CONFIG = """
import sys

from dask_gateway_server.backends.local import UnsafeLocalBackend


class LoopbackBackend(UnsafeLocalBackend):
    default_host = "127.0.0.1"  # the local backend's schedulers and workers listen on every interface by default


c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = LoopbackBackend
c.ClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.ClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
c.ClusterConfig.scheduler_memory = "1 G"
c.ClusterConfig.worker_memory = "1 G"
"""


# dask-gateway's objects close themselves again when collected, taking distributed's LoopRunner
# class lock: collected while a later local cluster's loop starts in this process, that deadlocks.
# The project keeps its own until the process ends (backends.py); the tests keep theirs here.
KEPT_UNTIL_EXIT: list[Any] = []


def kept(gateway_object: Any) -> Any:
    KEPT_UNTIL_EXIT.append(gateway_object)
    return gateway_object


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running dask-gateway-server's URL; the server (and any cluster left on it) is stopped at the end."""
    from dask_gateway import Gateway

    folder = tmp_path_factory.mktemp("gateway")
    api_port, proxy_port = free_port(), free_port()
    config = folder / "dask_gateway_config.py"
    config.write_text(CONFIG.format(api_port=api_port, proxy_port=proxy_port))
    log = (folder / "gateway.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "dask_gateway_server", "-f", str(config)],
        env=project_env(),
        cwd=folder,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        with kept(Gateway(url, loop=gateway_loop())) as gateway:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    assert gateway.list_clusters() == []
                    break
                except (OSError, ValueError):  # refused until the proxy listens, 404 until it has its routes
                    assert server.poll() is None and time.monotonic() < deadline, "dask-gateway-server did not start"
                    time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGINT)  # the server stops its clusters, then its proxy
        try:
            server.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def gateway(gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs in this process and the commands it starts ask the gateway, with one worker per cluster."""
    monkeypatch.setenv(ADDRESS_VAR, gateway_url)
    monkeypatch.setenv(f"{ENV_PREFIX}GATEWAY_N_WORKERS", "1")
    return gateway_url


def clusters_left(url: str) -> list:
    """The gateway's pending and running clusters, once stopping ones have gone (a bounded wait)."""
    from dask_gateway import Gateway

    with kept(Gateway(url, loop=gateway_loop())) as gateway:
        deadline = time.monotonic() + WAIT_SECONDS
        while (left := gateway.list_clusters()) and time.monotonic() < deadline:
            time.sleep(0.2)
    return left


def test_the_cluster_is_asked_for_with_shutdown_on_close_at_the_configured_address(gateway: str) -> None:
    from dask_gateway import GatewayCluster

    spec = cluster_spec("gateway", "some-flow")
    assert (spec.backend, spec.attached, spec.kept, spec.hold_signals_at_start) == ("gateway", False, False, True)
    assert spec.cluster_class is GatewayCluster and spec.workers == 1
    bound = inspect.signature(GatewayCluster).bind(**spec.kwargs).arguments
    assert (bound["address"], bound["shutdown_on_close"]) == (gateway, True)


def test_without_the_variable_dask_configs_gateway_address_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ADDRESS_VAR, raising=False)
    with dask.config.set({"gateway.address": "https://gateway.example.com/services/dask-gateway"}):
        spec = cluster_spec("gateway", "some-flow")
    assert spec.kwargs["address"] == "https://gateway.example.com/services/dask-gateway"


@pytest.mark.parametrize("name", FLOWS)
def test_each_flow_gets_a_cluster_from_the_gateway_and_it_is_gone_after_the_run(
    name: str, gateway: str, tmp_path: Path, capsys
) -> None:
    declaration = FLOWS[name]
    expected = str(smoke_result(declaration, tmp_path))
    capsys.readouterr()

    assert main(["run", name, "--cluster", "gateway", *smoke_args(declaration, tmp_path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{name}: Success\n") and out.count(expected) == 1, out
    assert clusters_left(gateway) == []


@pytest.mark.parametrize("name", FLOWS)
def test_after_a_failed_task_the_gateways_cluster_is_gone(
    name: str, gateway: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}CLUSTER", "gateway")
    declaration = find_flow(name)
    said = fail_a_cluster_task(declaration, monkeypatch)

    state = declaration.run(declaration.smoke_parameters(tmp_path))

    assert isinstance(state, Failed)
    assert said in failure_message(state, declaration.flow)
    assert clusters_left(gateway) == []


@pytest.mark.parametrize("moment", ["start", "compute"])
@pytest.mark.parametrize("name", FLOWS)
def test_after_a_ctrl_c_the_gateways_cluster_is_gone(name: str, moment: str, gateway: str, tmp_path: Path) -> None:
    """While the cluster starts (the signal held until the session has it) and while the run computes."""
    command = [*run_command(name, tmp_path), "--cluster", "gateway"]
    status, output = run_held_and_signalled(command, signal.SIGINT, project_env(HELD_OPEN_AT=moment))

    assert status == 128 + signal.SIGINT, output
    said = [line for line in output.splitlines() if "interrupted by " in line]
    assert said == [f"{name}: interrupted by SIGINT; no cluster is left running"], output
    assert "Traceback" not in output
    assert clusters_left(gateway) == []


def test_no_gateway_configured_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(ADDRESS_VAR, raising=False)
    with dask.config.set({"gateway.address": None}):
        assert main(["run", next(iter(FLOWS)), "--cluster", "gateway"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {ADDRESS_VAR}: no gateway is configured; set it, or dask's gateway.address "
        "(DASK_GATEWAY__ADDRESS), to the gateway's URL"
    ]


def test_a_gateway_that_is_not_there_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    name = next(iter(FLOWS))
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "run", name, "--cluster", "gateway", *smoke_args(FLOWS[name], tmp_path)],
        env=project_env(**{ADDRESS_VAR: url}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,  # a hang guard: nothing listens, so the connection is refused at once
    )
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: the gateway at {url} cannot be reached (") and line.endswith(
        "; nothing was started"
    ), line
    assert "dashboard=" not in done.stdout and "Traceback" not in done.stdout
