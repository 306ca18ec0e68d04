"""Everything that talks to Coiled (``coiled_api.py``), offline, with the real coiled client.

- A run's cluster: its keyword arguments bind to the real ``coiled.Cluster`` signature and
  carry the answers and the ``COILED_*`` overrides; a kept cluster has a stable name and
  outlives its run.
- First contact: no token, a token Coiled refuses, Coiled out of reach. Each case runs the
  project as a user does, in a fresh interpreter whose dask configuration is an empty
  folder (and whose home holds none), so no token from this machine leaks in; stdin is
  not a terminal, as in CI, unless a test gives it a real pseudo-terminal.
- ``clusters``: the calls it makes bind to ``coiled.list_clusters`` and
  ``coiled.delete_cluster``'s own signatures, and its rows read the records they return.
"""

from __future__ import annotations

import http.server
import inspect
import json
import logging
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import dask
import pendulum
import psutil
import pytest

from {{ cookiecutter.package_name }}.plumbing.coiled_api import (
    CoiledLoginNeeded,
    CoiledUnavailable,
    age,
    is_project_cluster,
    kept_name,
    list_call,
    require_credentials,
    row,
    stop_call,
    stop_command,
)
from {{ cookiecutter.package_name }}.plumbing.plan import RunPlan, cluster_spec, plan_run
from {{ cookiecutter.package_name }}.plumbing.rules import NAME, NAME_MAX, SettingError
from {{ cookiecutter.package_name }}.plumbing.session import ClusterSession, interrupted_line, kept_line
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, PROJECT_TAG

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, free_port

PROJECT = {{ cookiecutter.project_slug | literal }}
WORKSPACE = {{ cookiecutter.coiled_workspace | literal }}
REGION = {{ cookiecutter.coiled_region | literal }}
FLOW = next(iter(FLOWS))


# A run's cluster


def run_spec(flow_name: str, environ: dict[str, str], keep: bool = False) -> Any:
    """The Coiled cluster spec a run of ``flow_name`` gets; a spec is only made with a token."""
    with dask.config.set({"coiled.token": "a-token"}):
        return cluster_spec("coiled", flow_name, keep, environ)


def test_coiled_kwargs_bind_to_the_real_coiled_cluster_signature() -> None:
    import coiled

    spec = run_spec("some-flow", {})
    assert (spec.backend, spec.cluster_class, spec.attached, spec.kept) == (
        "coiled",
        coiled.Cluster,
        False,
        False,
    )
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
    kwargs = run_spec("some-flow", {}).kwargs
    assert "credentials" not in kwargs and "environ" not in kwargs


def test_without_keep_the_coiled_kwargs_are_the_answers() -> None:
    kwargs = dict(run_spec("timeseries", {}).kwargs)
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


def test_each_run_gets_a_new_name() -> None:
    assert run_spec("timeseries", {}).kwargs["name"] != run_spec("timeseries", {}).kwargs["name"]


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
    assert dict(run_spec("timeseries", environ).kwargs) == {
        "workspace": "team-ws",
        "region": "eu-west-1",
        "n_workers": 7,
        "worker_cpu": 8,
        "worker_memory": "32GiB",
        "idle_timeout": "5 minutes",
        "spot_policy": "on-demand",
        "name": "nightly",
        "no_client_timeout": "5m",
        "shutdown_on_close": True,
        "tags": {"project": PROJECT, "flow": "timeseries"},
    }


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
    with pytest.raises(SettingError, match=rf"^{ENV_PREFIX}{key}: .*{message}"):
        run_spec("timeseries", {f"{ENV_PREFIX}{key}": value})


@pytest.mark.parametrize("how", ["run --keep", "COILED_KEEP=true"])
def test_a_kept_cluster_has_a_stable_name_and_outlives_its_run(how: str) -> None:
    """The real coiled.Cluster takes the kwargs: the next run of the flow finds the cluster by
    its name, closing lets go of it (shutdown_on_close=False) and the idle timeout stops it."""
    import coiled

    environ = {f"{ENV_PREFIX}COILED_KEEP": "true"} if how == "COILED_KEEP=true" else {}
    spec = run_spec("timeseries", environ, keep=how == "run --keep")
    bound = inspect.signature(coiled.Cluster).bind(**spec.kwargs).arguments
    assert spec.kept
    assert (bound["name"], bound["shutdown_on_close"]) == (kept_name("timeseries"), False)
    assert bound["idle_timeout"] == {{ cookiecutter.coiled_idle_timeout | literal }}
    assert "no_client_timeout" not in bound  # Coiled ignores it for a kept cluster
    assert run_spec("timeseries", environ, keep=how == "run --keep").kwargs["name"] == bound["name"]
    fresh = dict(run_spec("timeseries", {}).kwargs)
    for changed in ("name", "shutdown_on_close", "no_client_timeout"):
        del fresh[changed]
    assert {key: value for key, value in bound.items() if key not in ("name", "shutdown_on_close")} == fresh


def test_a_kept_cluster_takes_a_fixed_name_when_one_is_set() -> None:
    spec = run_spec("timeseries", {f"{ENV_PREFIX}COILED_KEEP": "true", f"{ENV_PREFIX}COILED_NAME": "morning"})
    assert (spec.kwargs["name"], spec.kept) == ("morning", True)


@pytest.mark.parametrize("flow_name", ["timeseries", "My Flow: v2!", "x" * 80, "--odd--"])
def test_kept_names_follow_coileds_rules_for_any_flow_name(flow_name: str) -> None:
    name = kept_name(flow_name)
    assert NAME.fullmatch(name) and len(name) <= NAME_MAX


def test_a_kept_name_is_project_dash_flow_unless_too_long_for_coiled() -> None:
    plain = f"{PROJECT}-timeseries"
    if len(plain) <= NAME_MAX:
        assert kept_name("timeseries") == plain
    else:  # cut, and a digest of the flow's name after it
        assert kept_name("timeseries").startswith(plain[:50])


def test_flows_with_long_names_keep_clusters_of_their_own() -> None:
    assert len({kept_name("x" * 80), kept_name("x" * 80 + "y"), kept_name("x" * 81)}) == 3


def test_an_interrupted_run_says_that_its_kept_cluster_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C leaves a kept cluster running by design; the last line says so, and how to stop it.

    The session really asks Coiled for the cluster (here a server that is not there, so
    nothing starts): once asked, a kept cluster may be running, and the line must say so.
    """
    monkeypatch.setenv("CI", "true")  # as in CI: the token is checked first, no browser login
    spec = run_spec("timeseries", {}, keep=True)
    session = ClusterSession(RunPlan("timeseries", {}, spec), logging.getLogger("test"))
    assert interrupted_line(KeyboardInterrupt(), [session]) == "interrupted by SIGINT; nothing had started"
    with dask.config.set({"coiled.token": "a-token", "coiled.server": f"http://127.0.0.1:{free_port()}"}):
        with pytest.raises(CoiledUnavailable):
            session.open()
    name = kept_name("timeseries")
    said = (
        f"cluster {name} is kept running by choice: Coiled stops it after {spec.kwargs['idle_timeout']} without "
        f"work; stop it now with `python -m {PACKAGE} clusters --stop {name}`"
    )
    assert kept_line(session) == said
    assert interrupted_line(KeyboardInterrupt(), [session]) == f"interrupted by SIGINT; {said}"


# First contact

LOGIN_LINE = (
    "error: no Coiled token, and no terminal to log in from: run `coiled login` once on this machine, "
    "or set DASK_COILED__TOKEN (in CI, from a secret); nothing was started"
)
LOGIN_NOTE = (
    "note: no Coiled token yet; Coiled's browser login follows (or stop and run `coiled login` once on this "
    "machine, or set DASK_COILED__TOKEN (in CI, from a secret))"
)
# Not a speed check, a hang guard: Coiled's login polls for about ten minutes, while these
# commands end as soon as the project is imported. Busy cores slow the imports many times
# over, so a tighter bound would fail for the load alone.
HANG_GUARD_SECONDS = 60
LOGIN_PROMPT = "Visit the following page to authorize this computer"  # Coiled's browser login


def offline_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any Coiled or dask configuration of the machine's."""
    (home / "dask").mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DASK_", ENV_PREFIX, "CI"))}
    env.update(
        HOME=str(home),
        DASK_CONFIG=str(home / "dask"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    )
    return env


def run(command: list[str], env: dict[str, str], stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """Run with stdin not a terminal (unless given one), within the hang guard. Every process
    it started must be gone once it returns."""
    process = subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=PROJECT_ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=HANG_GUARD_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {HANG_GUARD_SECONDS} s: {command}")
    finally:
        process.kill()
    left = [p for p in psutil.process_iter(["pid"]) if _session(p) == process.pid]
    assert not left, f"processes left running: {left}"
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def runs(flow: str) -> list[str]:
    return [sys.executable, "-m", PACKAGE, "run", flow, "--cluster", "coiled"]


RUN = runs(FLOW)
PREFECT_RUN = [sys.executable, "-m", "prefect", "run", "-p", FLOWS[FLOW].source]
CLUSTERS = [sys.executable, "-m", PACKAGE, "clusters"]
STOP_ALL = [*CLUSTERS, "--stop"]
FIRST_CONTACTS = {"run": RUN, "prefect-run": PREFECT_RUN, "clusters": CLUSTERS, "clusters-stop": STOP_ALL}


@pytest.mark.parametrize("command", list(FIRST_CONTACTS.values()), ids=list(FIRST_CONTACTS))
def test_no_token_and_no_terminal_exits_2_at_once(command: list[str], tmp_path: Path) -> None:
    env = offline_env(tmp_path, **{f"{ENV_PREFIX}CLUSTER": "coiled"})
    done = run(command, env)
    assert done.returncode == 2, done.stderr
    assert LOGIN_LINE in done.stderr.splitlines()
    assert "Traceback" not in done.stderr + done.stdout
    assert LOGIN_PROMPT not in done.stderr + done.stdout


def test_ci_without_token_exits_2_even_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with _terminal() as terminal, dask.config.set({"coiled.token": None}):
        with pytest.raises(CoiledLoginNeeded):
            require_credentials(stdin=terminal)


def test_at_a_terminal_without_token_the_browser_login_is_announced(monkeypatch, capsys) -> None:
    monkeypatch.delenv("CI", raising=False)
    with _terminal() as terminal, dask.config.set({"coiled.token": None}):
        require_credentials(stdin=terminal)
    assert capsys.readouterr().err.splitlines() == [LOGIN_NOTE]


@pytest.mark.parametrize("flow", FLOWS)
def test_a_run_at_a_terminal_announces_the_login_once(flow: str, tmp_path: Path) -> None:
    """The plan checks the token once per run, whichever kind of flow: one note, then Coiled's own
    login, which here finds no Coiled to ask and ends the run in one line."""
    server = f"http://127.0.0.1:{free_port()}"
    with _terminal() as terminal:
        done = run(runs(flow), offline_env(tmp_path, DASK_COILED__SERVER=server), stdin=terminal)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines().count(LOGIN_NOTE) == 1, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"error: Coiled at {server} cannot be reached ("), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_planning_a_run_at_a_terminal_announces_the_login_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with _terminal() as terminal, dask.config.set({"coiled.token": None}):
        monkeypatch.setattr(sys, "stdin", terminal)
        plan = plan_run(FLOWS[FLOW], cluster="coiled")
    assert plan.backend == "coiled" and plan.spec.kwargs["tags"] == {"project": PROJECT, "flow": FLOW}
    assert capsys.readouterr().err.count(LOGIN_NOTE) == 1


@contextmanager
def _terminal() -> Iterator[IO[str]]:
    """A real pseudo-terminal as stdin."""
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "r") as terminal:
            yield terminal
    finally:
        os.close(leader)


def test_doctor_reports_a_missing_token_for_coiled_runs(tmp_path: Path) -> None:
    doctor = [sys.executable, "-m", PACKAGE, "doctor"]
    done = run(doctor, offline_env(tmp_path, **{f"{ENV_PREFIX}CLUSTER": "coiled"}))
    assert done.returncode == 1
    assert "problem  no Coiled token, and runs go to Coiled by default: run `coiled login`" in done.stdout
    local = run(doctor, offline_env(tmp_path, **{f"{ENV_PREFIX}CLUSTER": "local"}))
    assert "note     no Coiled token; runs with --cluster coiled need one" in local.stdout


@pytest.mark.parametrize("command", list(FIRST_CONTACTS.values()), ids=list(FIRST_CONTACTS))
def test_coiled_out_of_reach_fails_fast_in_one_line(command: list[str], tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    env = offline_env(
        tmp_path, DASK_COILED__TOKEN="a-token", DASK_COILED__SERVER=server, **{f"{ENV_PREFIX}CLUSTER": "coiled"}
    )
    done = run(command, env)
    assert done.returncode == 1, done.stderr
    assert f"error: Coiled at {server} cannot be reached (ClientConnectorError: " in done.stderr
    assert "check the network, a proxy or firewall, and DASK_COILED__SERVER if you set it" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert LOGIN_PROMPT not in done.stderr + done.stdout


class RejectingServer(http.server.BaseHTTPRequestHandler):
    """Answers every request as Coiled's server answers an unknown token: 401."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"detail": "Invalid token."}')

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        self.server.requests.append(self.requestline)


@contextmanager
def rejecting_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), RejectingServer)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", [*map(runs, FLOWS), CLUSTERS], ids=[*FLOWS, "clusters"])
def test_a_rejected_token_fails_in_one_line_without_a_login(command: list[str], tmp_path: Path) -> None:
    """Coiled's client answers a rejected token with its browser login; without a terminal the
    project asks first, once, and stops at Coiled's answer."""
    with rejecting_server() as server:
        url = f"http://127.0.0.1:{server.server_port}"
        env = offline_env(tmp_path, DASK_COILED__TOKEN="a-token", DASK_COILED__SERVER=url)
        done = run(command, env)
    assert done.returncode == 1, done.stderr
    assert (
        f"error: Coiled at {url} refused the token (Auth Error: 401. Invalid Token); run `coiled login` again, "
        "or check DASK_COILED__TOKEN"
    ) in done.stderr.splitlines()
    assert "Traceback" not in done.stdout + done.stderr
    assert server.requests == ["GET /api/v2/user/me HTTP/1.1"]


def test_the_full_error_shows_at_prefects_debug_level(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    env = offline_env(
        tmp_path, DASK_COILED__TOKEN="a-token", DASK_COILED__SERVER=server, PREFECT__LOGGING__LEVEL="DEBUG"
    )
    done = run(RUN, env)
    assert done.returncode == 1
    assert "Traceback" in done.stdout + done.stderr and "aiohttp" in done.stdout + done.stderr


def test_a_misspelt_variable_warns_under_every_command(tmp_path: Path) -> None:
    typo = {f"{ENV_PREFIX}COILED_WORKER_MEMROY": "8GiB", f"{ENV_PREFIX}CLUSTER": "coiled"}
    warning = (
        f"warning: {ENV_PREFIX}COILED_WORKER_MEMROY is not a setting of this project and is ignored; "
        f"did you mean {ENV_PREFIX}COILED_WORKER_MEMORY?"
    )
    for command in (RUN, PREFECT_RUN):
        done = run(command, offline_env(tmp_path, **typo))
        assert done.stderr.splitlines().count(warning) == 1, done.stderr


# The clusters command

SERVER = "https://cloud.coiled.io"
# A record as coiled.list_clusters returns it (coiled.v2.core.Cloud._list_clusters_page; the
# fields ``coiled cluster list`` and coiled.cli.cluster.utils.find_cluster read).
RECORD = {
    "id": 81234,
    "name": f"{PROJECT_TAG}-timeseries",
    "created": "2026-12-03T08:00:00.123456+00:00",
    "updated": "2026-12-03T08:03:10.000000+00:00",
    "current_state": {"state": "ready", "reason": "", "updated": "2026-12-03T08:03:10.000000+00:00"},
}
NOW = pendulum.parse("2026-12-03T10:05:30+00:00")
DASHBOARD = "https://203.0.113.7:8787/status"
OURS = {"project": PROJECT_TAG, "flow": "timeseries"}
THEIRS = {"project": "other-project"}


def state(name: str) -> dict[str, str]:
    return {"state": name}


@pytest.mark.parametrize("workspace", ["", "team-ws"])
def test_the_calls_bind_to_the_real_coiled_functions(workspace: str) -> None:
    import coiled

    listing = inspect.signature(coiled.list_clusters).bind(**list_call(workspace)).arguments
    stopping = inspect.signature(coiled.delete_cluster).bind(**stop_call(RECORD, workspace)).arguments
    assert listing.get("workspace", "") == stopping.get("workspace", "") == workspace
    assert stopping["cluster_id"] == RECORD["id"] and "name" not in stopping  # by id: names repeat in a history


def test_a_row_shows_name_state_age_and_a_link() -> None:
    assert row(RECORD, NOW, SERVER) == f"{PROJECT_TAG}-timeseries  ready  2h 05m  {SERVER}/clusters/81234"
    scheduler = {"dashboard_address": DASHBOARD}
    assert row({**RECORD, "scheduler": scheduler}, NOW, SERVER).endswith(f"  {DASHBOARD}")


@pytest.mark.parametrize(
    ("created", "shown"),
    [
        ("2026-12-03T10:05:00Z", "0m"),
        ("2026-12-03T09:50:29.5+00:00", "15m"),
        ("2026-11-30T06:00:00+00:00", "3d 4h"),
        ("2026-12-03T11:00:00+00:00", "0m"),  # a clock ahead of this one's
    ],
)
def test_age_reads_coileds_timestamps(created: str, shown: str) -> None:
    assert age(created, NOW) == shown


@pytest.mark.parametrize(
    ("change", "ours"),
    [
        ({}, True),
        ({"name": "nightly", "tags": OURS}, True),  # COILED_NAME
        ({"name": "other-project-timeseries", "tags": THEIRS}, False),
        ({"current_state": state("stopped")}, False),
        ({"current_state": state("error")}, False),
        ({"current_state": state("pending")}, True),
    ],
)
def test_the_project_clusters_are_its_running_ones(change: dict, ours: bool) -> None:
    assert is_project_cluster({**RECORD, **change}) is ours


def test_the_stop_command_is_this_projects() -> None:
    assert stop_command("x") == f"python -m {PACKAGE} clusters --stop x"


TEAM = WORKSPACE or "team"  # the workspace the stand-in's user belongs to (and the project's, when it names one)


class CoiledStandIn(http.server.BaseHTTPRequestHandler):
    """Answers what the coiled client asks to list and delete clusters, as Coiled's API does: the user, their
    workspace memberships, the workspace's clusters (one page, then an empty one), and deletions by id."""

    def answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        account = {"slug": TEAM, "name": TEAM}
        if self.path == "/api/v2/user/me":
            self.answer({"username": "tester", "default_account": account})
        elif self.path == "/api/v2/user/me/memberships":
            self.answer([{"account": account, "is_admin": False, "is_default_account": True}])
        elif self.path.startswith(f"/api/v2/clusters/account/{TEAM}/?"):
            self.answer(self.server.records if "offset=0&" in self.path else [])
        else:
            self.send_error(404)

    def do_DELETE(self) -> None:  # noqa: N802
        self.answer({})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        self.server.requests.append(self.requestline)


@contextmanager
def coiled_stand_in(records: list[dict]) -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CoiledStandIn)
    server.records, server.requests = records, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def deletions(server: http.server.HTTPServer) -> list[str]:
    return [line.split()[1] for line in server.requests if line.startswith("DELETE ")]


def test_clusters_lists_and_stops_the_projects_running_clusters_only(tmp_path: Path) -> None:
    """The real coiled client, asking a stand-in of Coiled's API on loopback: the command lists the
    project's running clusters, stops one by name or all of them by id, and leaves every other alone."""
    day = "2026-12-03T08:00:00+00:00"
    records = [
        {**RECORD, "id": 1},
        {**RECORD, "id": 2, "name": "nightly", "tags": OURS, "current_state": state("pending")},  # COILED_NAME
        {**RECORD, "id": 3, "current_state": state("stopped"), "created": day},  # the same name, in the history
        {**RECORD, "id": 4, "name": "other-project-timeseries", "tags": THEIRS},
    ]
    deleted = f"/api/v2/clusters/account/{TEAM}/id/"
    with coiled_stand_in(records) as server:
        url = f"http://127.0.0.1:{server.server_port}"
        env = offline_env(tmp_path, DASK_COILED__TOKEN="a-token", DASK_COILED__SERVER=url)
        listed = run(CLUSTERS, env)
        assert listed.returncode == 0, listed.stderr
        assert [line.split("  ")[:2] for line in listed.stdout.splitlines()] == [
            [RECORD["name"], "ready"],
            ["nightly", "pending"],
        ], listed.stdout
        assert listed.stdout.splitlines()[0].endswith(f"  {url}/clusters/1")

        unknown = run([*STOP_ALL, "someone-elses"], env)
        assert unknown.returncode == 2 and unknown.stderr.splitlines() == [
            f"error: --stop someone-elses: no running Coiled cluster of project {PROJECT_TAG}"
            + (f" in workspace {WORKSPACE}" if WORKSPACE else "")
            + f" has that name (running: {RECORD['name']}, nightly)"
        ], unknown.stderr

        one = run([*STOP_ALL, "nightly"], env)
        assert (one.returncode, one.stdout, deletions(server)) == (0, "stopped nightly\n", [f"{deleted}2"])

        every = run(STOP_ALL, env)
        assert every.returncode == 0 and every.stdout.splitlines() == [f"stopped {RECORD['name']}", "stopped nightly"]
        assert deletions(server) == [f"{deleted}2", f"{deleted}1", f"{deleted}2"]
    for done in (listed, unknown, one, every):
        assert "Traceback" not in done.stdout + done.stderr
