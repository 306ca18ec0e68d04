"""A look inside a run: ``run --report`` for every flow on both kinds of local cluster, and the terminal's extras.

The report is Dask's performance report of the run, with its scripts inline so it shows
without network; it is written whole or not at all (a full disk leaves no half a file),
and a path that exists is refused before any cluster starts.
"""

from __future__ import annotations

import errno
import logging
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster

from {{ cookiecutter.package_name }}.plumbing import backends, session
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.flow import ClusterDaskExecutor
from {{ cookiecutter.package_name }}.plumbing.run import run_flow
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, project_env, smoke_args

# What every report Dask writes holds: its title and the panels of its tabs.
REPORT_MARKERS = ("Dask Performance Report", "Task Stream", "Worker Profile", "Bandwidth")
# What a page needs the network for: a script or a style sheet fetched from elsewhere.
FETCHED = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
STYLE_SHEET = re.compile(r"rel\s*=\s*[\"']?stylesheet", re.IGNORECASE)


def performance_report(name: str, path: Path, folder: Path) -> str:
    """The report of a smoke run of flow ``name`` (its parameters made in ``folder``), written to ``path``."""
    outcome = run_flow(name, FLOWS[name].smoke_parameters(folder), cluster="local", report=path)
    assert outcome.failure is None, outcome.failure
    return path.read_text(encoding="utf-8")


def needs_network(html: str) -> list[str]:
    """The scripts and style sheets the page would fetch (a favicon it can do without)."""
    return [tag for tag in FETCHED.findall(html) if tag.lower().startswith("<script") or STYLE_SHEET.search(tag)]


@pytest.mark.parametrize("processes", ["true", "false"], ids=["worker-processes", "worker-threads"])
@pytest.mark.parametrize("name", FLOWS)
def test_the_report_is_dasks_performance_report_of_the_run(
    name: str, processes: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every flow's report; a flow whose every task runs on the cluster finds each task in it
    (its key starts with the task's name). Its test file checks what its own computation shows."""
    monkeypatch.setenv(f"{ENV_PREFIX}LOCAL_PROCESSES", processes)
    (tmp_path / "smoke").mkdir()
    html = performance_report(name, tmp_path / "report.html", tmp_path / "smoke")
    assert all(marker in html for marker in REPORT_MARKERS)
    assert needs_network(html) == [], "the report needs the network to show"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.html", "smoke"], "a temporary file was left"
    flow = FLOWS[name].flow
    if isinstance(flow.executor, ClusterDaskExecutor):
        assert all(f'"{task.name}-' in html for task in flow.tasks), sorted(task.name for task in flow.tasks)


def test_the_offline_check_finds_what_a_page_would_fetch() -> None:
    """``needs_network`` against what Bokeh's CDN mode and a style sheet link look like."""
    fetched = [
        '<script type="text/javascript" src="https://cdn.bokeh.org/bokeh/release/bokeh-3.4.0.min.js"></script>',
        "<script src=//cdn.example.com/x.js></script>",
        '<link rel="stylesheet" href="http://example.com/a.css">',
    ]
    offline = ['<script type="text/javascript">var a = "https://x";</script>', '<link rel="icon" href="https://x">']
    assert [tag.split(">")[0] + ">" for tag in fetched] == needs_network("\n".join(fetched + offline))


class FullFile:
    """A file on a disk that fills up: half of what is written lands, then ENOSPC, as the kernel reports it."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class FullDisk:
    """``os`` as the session module sees it, on that disk."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fdopen(fd: int, *args: Any, **kwargs: Any) -> FullFile:
        return FullFile(os.fdopen(fd, *args, **kwargs))


def test_a_report_the_disk_has_no_room_for_leaves_no_file_and_the_run_succeeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(session, "os", FullDisk())
    name, path = next(iter(FLOWS)), tmp_path / "report.html"
    (tmp_path / "smoke").mkdir()
    assert main(["run", name, "--report", str(path), *smoke_args(FLOWS[name], tmp_path / "smoke")]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: Success\n")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["smoke"], "half a report, or its temporary, was left"
    said = [record for record in caplog.records if "performance report" in record.getMessage()]
    assert [(record.levelname, record.getMessage()) for record in said] == [
        ("WARNING", f"performance report not written to {path}: OSError: [Errno 28] No space left on device")
    ]


@pytest.mark.parametrize("case", ["existing file", "missing folder"])
def test_a_report_path_that_cannot_be_written_whole_exits_2_before_any_cluster(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.html" if case == "existing file" else tmp_path / "nowhere" / "report.html"
    if case == "existing file":
        path.write_text("the user's own file")
    started: list[str] = []
    monkeypatch.setattr(backends.ClusterSpec, "start", lambda spec: started.append(spec.name))
    name = next(iter(FLOWS))
    assert main(["run", name, "--report", str(path), *smoke_args(FLOWS[name], tmp_path)]) == 2
    expected = {
        "existing file": f"error: --report {path}: exists; choose a new file (a report never replaces one)",
        "missing folder": f"error: --report {path}: the folder {path.parent} does not exist",
    }[case]
    assert capsys.readouterr().err.splitlines() == [expected]
    assert started == [], "a cluster was started for a run that was refused"
    assert case != "existing file" or path.read_text() == "the user's own file"


def at_a_terminal(*args: str) -> str:
    """Run the command line with its output on a real pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    env = project_env()
    process = subprocess.Popen(
        [sys.executable, "-m", PACKAGE, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL,
        cwd=PROJECT_ROOT, env=env,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 300  # a hang guard, not a timing check
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    finally:
        process.kill()
        os.close(leader)
    return shown.decode(errors="replace")


def test_a_terminal_is_shown_the_dashboard_link_once_before_the_work(tmp_path: Path) -> None:
    name = next(iter(FLOWS))
    shown = at_a_terminal("run", name, *smoke_args(FLOWS[name], tmp_path))
    links = [line for line in shown.splitlines() if line.startswith("dashboard: http")]
    assert len(links) == 1, shown
    assert shown.index(links[0]) < shown.index(f"{name}: Success")


def test_a_long_computation_shows_a_progress_bar_at_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``compute_with_progress`` on a real cluster: the bar on a real terminal, nothing in a log."""
    monkeypatch.setattr(session, "PROGRESS_AFTER_SECONDS", 0)  # any computation counts as long
    slow = dask.delayed(time.sleep)(0.5)
    leader, follower = pty.openpty()
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
            assert session.compute_with_progress(client, slow) is None
            assert capsys.readouterr().out == ""  # not a terminal
            with os.fdopen(follower, "w") as terminal, monkeypatch.context() as patch:
                patch.setattr(sys, "stdout", terminal)
                assert session.compute_with_progress(client, slow) is None
    shown = os.read(leader, 65536).decode(errors="replace")
    os.close(leader)
    assert "100% Completed" in shown, shown
