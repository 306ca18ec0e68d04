"""What the generic tests know of the project's flows (each one's declaration, found as the CLI
finds them), and how they start the real servers they test against."""

from __future__ import annotations

import http.server
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration, find_flows

PACKAGE = find_flows.__module__.partition(".")[0]
FLOWS = find_flows()
PROJECT_ROOT = Path(__file__).resolve().parents[1]
HELD = "held-open: "  # held_open.py's line at each moment it holds
WAIT_SECONDS = 90  # not a timing check: only keeps a hung run or server from hanging the suite


def smoke_args(declaration: FlowDeclaration, folder: Path) -> list[str]:
    """The flow's smoke parameters (made in ``folder``, for a flow that reads files) as ``--param NAME=VALUE``
    arguments (text as is, the rest as JSON)."""
    pairs = [
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in declaration.smoke_parameters(folder).items()
    ]
    return [arg for pair in pairs for arg in ("--param", pair)]


def smoke_result(declaration: FlowDeclaration, folder: Path) -> object:
    """The flow's result for its smoke parameters, run on the embedded cluster: what any other cluster must give."""
    return declaration.run(declaration.smoke_parameters(folder)).result[declaration.result].result


@contextmanager
def extra_flows(folder: Path) -> Iterator[Path]:
    """``folder`` as a second folder of the ``flows`` package while the block runs, for flow modules a test
    writes (write them before the first ``find_flows``); afterwards neither the folder nor its modules are found."""
    package = importlib.import_module(f"{PACKAGE}.flows")
    folder.mkdir(parents=True, exist_ok=True)
    before, modules = list(package.__path__), set(sys.modules)
    package.__path__.append(str(folder))
    try:
        yield folder
    finally:
        package.__path__[:] = before
        for name in set(sys.modules) - modules:
            if name.startswith(f"{package.__name__}."):
                del sys.modules[name]
        importlib.invalidate_caches()


def free_port() -> int:
    """A loopback port nothing listens on (the OS's pick, released for the server about to take it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen, what: str, seconds: float = 60) -> None:
    """Return once ``server`` accepts connections on ``port``; fail if it exits or takes over ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)


@contextmanager
def moto_s3(log: Path) -> Iterator[str]:
    """A real S3-compatible server (moto, the s3-test extra) on a free loopback port, stopped when the block
    ends; yields its endpoint URL. Its output goes to ``log``."""
    port = free_port()
    with log.open("wb") as output:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        server = subprocess.Popen(command, stdout=output, stderr=output)
        try:
            wait_listening(port, server, "moto_server", seconds=30)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def project_env(**extra: str) -> dict[str, str]:
    """This environment with the project importable: what a command, or a cluster's processes, need."""
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def run_held_and_signalled(command: list[str], signum: int, env: Mapping[str, str]) -> tuple[int, str]:
    """Run ``command`` (under held_open.py), send ``signum`` when it holds; its exit status and output.

    SIGINT goes to the command's process group, as a terminal's Ctrl-C does; another
    signal to the command alone, as ``kill`` and ``timeout`` send it.
    """
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
        cwd=PROJECT_ROOT,
        start_new_session=True,  # its own process group, as a terminal gives a job
    )
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if line.startswith(HELD):
                if signum == signal.SIGINT:
                    os.killpg(process.pid, signum)
                else:
                    process.send_signal(signum)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reader.join(timeout=10)
    return process.returncode, "".join(lines)


class Webhook:
    """A Slack-compatible incoming webhook on 127.0.0.1 that records the JSON of every post.

    ``answer`` is the HTTP status it answers with, or None to take the post and never
    answer (until the test ends); ``trickle`` sends the answer's body a byte every half
    second, each in time for any socket timeout. ``url`` ends in a made-up secret, as a
    real one does.
    """

    SECRET = "T0000/B0000/not-a-real-secret"
    TRICKLE_BYTES = 1000

    def __init__(self, answer: int | None = 200, trickle: bool = False) -> None:
        self.posts: list[dict[str, Any]] = []
        self.answer = answer
        self.trickle = trickle
        self.closing = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        # Polled often: a test's end waits for the next poll to stop the server.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{self.SECRET}"

    @property
    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(json.loads(body))
                if receiver.answer is None:
                    receiver.closing.wait(WAIT_SECONDS)
                    return
                self.send_response(receiver.answer)
                if not receiver.trickle:
                    self.end_headers()
                    self.wfile.write(b"ok")
                    return
                self.send_header("Content-Length", str(receiver.TRICKLE_BYTES))
                self.end_headers()
                for _ in range(receiver.TRICKLE_BYTES):
                    if receiver.closing.wait(0.5):
                        return
                    self.wfile.write(b".")
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's naming
                pass

        return Handler

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
