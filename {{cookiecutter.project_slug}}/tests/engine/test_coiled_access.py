"""First contact with Coiled, offline, with the real coiled client: no token, or Coiled out of reach.

Each case runs the project as a user does, in a fresh interpreter whose dask
configuration is an empty folder (and whose home holds none), so no token from this
machine leaks in; stdin is not a terminal, as in CI.
"""

from __future__ import annotations

import http.server
import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import dask
import psutil
import pytest

from {{ cookiecutter.package_name }}.plumbing import coiled_access
from {{ cookiecutter.package_name }}.plumbing.coiled_access import CoiledLoginNeeded, require_credentials
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FLOW = next(iter(FLOWS))
LOGIN_LINE = (
    "error: no Coiled token, and no terminal to log in from: run `coiled login` once on this machine, "
    "or set DASK_COILED__TOKEN (in CI, from a secret); nothing was started"
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


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run with stdin not a terminal, within the hang guard. Every process it started must be
    gone once it returns."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RUN = [sys.executable, "-m", PACKAGE, "run", FLOW, "--cluster", "coiled"]
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
    monkeypatch.setattr(coiled_access, "_login_announced", False)
    with _terminal() as terminal, dask.config.set({"coiled.token": None}):
        require_credentials(stdin=terminal)
        require_credentials(stdin=terminal)
    assert capsys.readouterr().err.splitlines() == [
        "note: no Coiled token yet; Coiled's browser login follows (or stop and run `coiled login` once on this "
        "machine, or set DASK_COILED__TOKEN (in CI, from a secret))"
    ]


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
    server = f"http://127.0.0.1:{closed_port()}"
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


def test_a_rejected_token_fails_in_one_line_without_a_login(tmp_path: Path) -> None:
    """Coiled's client answers a rejected token with its browser login; without a terminal the
    project asks first, and stops at Coiled's answer."""
    with rejecting_server() as server:
        url = f"http://127.0.0.1:{server.server_port}"
        env = offline_env(tmp_path, DASK_COILED__TOKEN="a-token", DASK_COILED__SERVER=url)
        done = run(RUN, env)
    assert done.returncode == 1, done.stderr
    assert (
        f"error: Coiled at {url} refused the token (Auth Error: 401. Invalid Token); run `coiled login` again, "
        "or check DASK_COILED__TOKEN"
    ) in done.stderr.splitlines()
    assert "Traceback" not in done.stdout + done.stderr
    assert server.requests == ["GET /api/v2/user/me HTTP/1.1"]


def test_the_full_error_shows_at_prefects_debug_level(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
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
