"""Runs nobody watches: ``serve`` on a schedule, the run history, alerts, and the ways Prefect starts a
flow without the project's command line (``prefect run -p``, an agent's runner, ``prefect build``).

Every part is real and on loopback: the webhook is an HTTP server on 127.0.0.1 that records
each post (or answers 500, or never answers), the history is a SQLite file of the test's
own, the clusters are embedded ones, the commands are the project's own in processes of
their own where signals or several processes matter. Every wait is bounded.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import prefect
import pytest
from croniter import croniter
from prefect.engine import FlowRunner
from prefect.schedules import CronSchedule, IntervalSchedule
from prefect.serialization.flow import FlowSchema

from {{ cookiecutter.package_name }}.plumbing import rules
from {{ cookiecutter.package_name }}.plumbing.alerts import POST_SECONDS
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.history import RunEntry, begin, finish, listed, now
from {{ cookiecutter.package_name }}.plumbing.plan import plan_run
from {{ cookiecutter.package_name }}.settings import DISTRIBUTION as PROJECT
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import (
    FLOWS,
    PACKAGE,
    PROJECT_ROOT,
    WAIT_SECONDS,
    Webhook,
    free_port,
    project_env,
    run_held_and_signalled,
    smoke_args,
)

FIRST = next(iter(FLOWS))
CLOSED = " closed transitions="  # the session's log line once a cluster is closed
ALERT_BOUND_SECONDS = 10  # what an alert may add to a run, whatever its webhook does
SIGNAL_BOUND_SECONDS = 5  # from a signal while serve waits to its exit
INJECTED = "RuntimeError: injected: a bug"
# The project's command line with the flow's result task failing, every run.
FAILING = f"""
import runpy, sys
from {PACKAGE}.plumbing.contract import find_flow

def broken(*args, **kwargs):
    raise RuntimeError("injected: a bug")

find_flow(sys.argv[1]).result.run = broken
sys.argv = [sys.argv[0], *sys.argv[2:]]
runpy.run_module("{PACKAGE}", run_name="__main__", alter_sys=True)
"""
# A flow with a schedule of its own, which no way of running it once may follow.
SCHEDULED_FLOW = f"""
from datetime import timedelta

from prefect import task
from prefect.schedules import IntervalSchedule

from {PACKAGE}.plumbing import cluster_flow


@task
def one() -> int:
    return 1


with cluster_flow("scheduled") as flow:
    one()
flow.schedule = IntervalSchedule(interval=timedelta(seconds=1))
"""


def failure_of(name: str) -> str:
    return f"task {FLOWS[name].result.name!r} failed: {INJECTED}"


def command(*args: str, failing: str | None = None) -> list[str]:
    """The project's command line, with ``failing``'s result task broken if given."""
    if failing is None:
        return [sys.executable, "-m", PACKAGE, *args]
    return [sys.executable, "-c", FAILING, failing, *args]


def run(arguments: list[str], timeout: float = WAIT_SECONDS, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        arguments, capture_output=True, text=True, env=project_env(**env), cwd=PROJECT_ROOT, timeout=timeout
    )


def broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected: a bug")


# --- the cron rule: what it accepts, croniter (Prefect's CronSchedule) runs -------------------

CRON_ACCEPTED = [
    "0 6 * * *",
    "*/15 8-18 * * mon-fri",
    "0 0 1 jan,jul *",
    "5,10-20/5 */2 1-31/2 JAN-DEC SUN-SAT",
    "0 0 29 2 *",
    "59 23 31 12 6",
    " 0  6 * * * ",
    "0 0 30 2 1",  # day 30 never comes in February, but Mondays do: cron runs on either
]
CRON_REFUSED_BY_BOTH = ["61 * * * *", "* * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "*/0 * * * *", "- * * * *"]
CRON_REFUSED_ON_PURPOSE = {
    "0 0 * * 7": "Sunday as 7: cron(8) and croniter take it, GitHub's schedule documents 0-6",
    "0 0 * * mon-sun": "a range that runs backwards",
    "*/61 * * * *": "a step longer than the field",
    "5/15 * * * *": "a step after a single value: not POSIX cron",
    "0 0 30 2 *": "a day that never comes: croniter looks for it for years",
    "* * * * * *": "a sixth field (croniter's seconds)",
    "@daily": "a nickname, which GitHub's schedule does not take",
    "0 0 L * *": "croniter's last-day extension",
    "0 0 ? * *": "Quartz's no-value mark",
    "0 0 * * 5#3": "croniter's nth-weekday extension",
}


@pytest.mark.parametrize("schedule", CRON_ACCEPTED)
def test_every_cron_schedule_the_rule_accepts_gives_prefect_dates(schedule: str) -> None:
    normal = rules.cron(schedule)
    assert normal == " ".join(schedule.split()) and croniter.is_valid(normal)
    dates = CronSchedule(normal).next(3)
    assert len(dates) == 3 and dates == sorted(dates)


@pytest.mark.parametrize("schedule", [*CRON_REFUSED_BY_BOTH, *CRON_REFUSED_ON_PURPOSE])
def test_the_cron_rule_refuses_naming_the_field_and_the_form(schedule: str) -> None:
    with pytest.raises(rules.RuleError) as refused:
        rules.cron(schedule)
    message = str(refused.value)
    assert message.startswith(f"{schedule!r} is not a cron schedule: ") and "\n" not in message
    assert message.endswith(f"; use {rules.CRON_EXAMPLES}")
    if schedule in CRON_REFUSED_BY_BOTH:
        assert not croniter.is_valid(schedule)


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (["--cron", "61 * * * *"], "error: --cron: '61 * * * *' is not a cron schedule: minute '61' is outside 0-59; "),
        (["--cron", "0 0 * * 8"], "error: --cron: '0 0 * * 8' is not a cron schedule: day of week '8' is outside 0-6 "),
        (["--every", "0s"], "error: --every: '0s' is not a duration from 1 second to 366 days such as "),
        (["--every=-5m"], "error: --every: '-5m' is not a duration from 1 second to 366 days such as "),
        (["--every", "10m", "--runs", "0"], "error: --runs: '0' is not a whole number from 1 to 1000000"),
    ],
)
def test_serve_refuses_a_bad_schedule_in_one_line_before_anything_starts(
    arguments: list[str], line: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["serve", FIRST, *arguments]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(line) and err.count("\n") == 1 and out == "", err


# --- serve: each date a whole run, however the runs end ---------------------------------------


@pytest.mark.parametrize("name", FLOWS)
def test_serve_makes_each_date_a_whole_run_with_its_own_cluster(
    name: str, tmp_path: Path, history: Path, webhook: Webhook
) -> None:
    done = run(
        command("serve", name, "--every", "1s", "--runs", "3", *smoke_args(FLOWS[name], tmp_path)), 4 * WAIT_SECONDS
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert done.stdout.splitlines()[-1] == f"{name}: 3 runs, 0 did not succeed", output
    runs = listed(history)
    assert [(row["flow"], row["state"], row["exit_status"]) for row in runs] == [(name, "Success", 0)] * 3
    assert len({row["cluster"] for row in runs}) == 3 and output.count(CLOSED) == 3, output
    assert all(f"name={row['cluster']} closed" in output for row in runs), output
    assert webhook.posts == []


def test_serve_goes_on_after_a_failed_run_and_alerts_each_one(tmp_path: Path, history: Path, webhook: Webhook) -> None:
    arguments = command(
        "serve", FIRST, "--every", "1s", "--runs", "3", *smoke_args(FLOWS[FIRST], tmp_path), failing=FIRST
    )
    done = run(arguments, 4 * WAIT_SECONDS)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert done.stdout.splitlines()[-1] == f"{FIRST}: 3 runs, 3 did not succeed", output
    runs = listed(history)
    assert [(row["state"], row["error"], row["exit_status"]) for row in runs] == [("Failed", failure_of(FIRST), 1)] * 3
    assert output.count(CLOSED) == 3, output
    assert [text.splitlines()[1] for text in webhook.texts] == [failure_of(FIRST)] * 3


def test_a_signal_while_serve_waits_ends_it_at_once(history: Path) -> None:
    lines: list[str] = []
    waiting = threading.Event()
    serving = command("serve", FIRST, "--cron", "0 0 1 1 *")  # next New Year: it waits
    with subprocess.Popen(
        serving, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=project_env(), cwd=PROJECT_ROOT
    ) as process:

        def read() -> None:
            for line in process.stdout:
                lines.append(line)
                if "next run at" in line:
                    waiting.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert waiting.wait(WAIT_SECONDS), "".join(lines)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=WAIT_SECONDS)
            took = time.monotonic() - signalled
        finally:
            process.kill()
            reader.join(timeout=10)
    output = "".join(lines)
    assert status == 128 + signal.SIGTERM and took < SIGNAL_BOUND_SECONDS, (took, output)
    assert output.splitlines()[-1] == f"{FIRST}: interrupted by SIGTERM between runs; nothing was running", output
    assert "Traceback" not in output and listed(history) == []


def test_a_signal_during_a_served_run_closes_its_cluster_first(tmp_path: Path, history: Path, webhook: Webhook) -> None:
    held = [sys.executable, str(PROJECT_ROOT / "tests" / "held_open.py")]
    arguments = [*held, "-m", PACKAGE, "serve", FIRST, "--every", "1h", *smoke_args(FLOWS[FIRST], tmp_path)]
    env = project_env(
        HELD_OPEN_AT="compute", **{f"{ENV_PREFIX}LOCAL_PROCESSES": "true", f"{ENV_PREFIX}LOCAL_N_WORKERS": "1"}
    )
    status, output = run_held_and_signalled(arguments, signal.SIGTERM, env)
    assert status == 128 + signal.SIGTERM, output
    assert output.count(CLOSED) == 1 and "Traceback" not in output, output
    assert output.splitlines()[-1] == f"{FIRST}: interrupted by SIGTERM; no cluster is left running", output
    [row] = listed(history)
    assert (row["state"], row["error"], row["exit_status"]) == ("Interrupted", "interrupted by SIGTERM", 143)
    [alert] = webhook.texts
    assert alert.splitlines()[0] == f"{PROJECT}: flow {FIRST} ended Interrupted (exit status 143)"


# --- alerts -----------------------------------------------------------------------------------


def test_always_alerts_a_success_too_naming_where_it_ran(
    tmp_path: Path, history: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}NOTIFY_ON", "always")
    report = tmp_path / "report.html"
    assert main(["run", FIRST, "--report", str(report), *smoke_args(FLOWS[FIRST], tmp_path)]) == 0
    [row] = listed(history)
    assert row["report"] == str(report) and report.is_file()
    assert set(row["parameters"]) == set(FLOWS[FIRST].defaults)  # every parameter of the run, defaults too
    [alert] = webhook.texts
    took = alert.splitlines()[-1].split(", ")[2]
    assert alert.splitlines() == [
        f"{PROJECT}: flow {FIRST} ended Success (exit status 0)",
        f"backend local, cluster {row['cluster']}, {took}, on host {socket.gethostname()}",
    ]
    assert re.fullmatch(r"[0-9]+\.[0-9] s", took), alert


def test_the_webhook_url_stays_out_of_the_plans_repr(webhook: Webhook) -> None:
    """A plan is what a debugger, a log line or a traceback's locals would show of a run."""
    plan = plan_run(FLOWS[FIRST])
    assert plan.alerts is not None and plan.alerts.url == webhook.url
    assert Webhook.SECRET not in repr(plan) and "/services/" not in repr(plan), repr(plan)


@contextmanager
def webhook_that(fails: str) -> Iterator[tuple[str, str]]:
    """A webhook URL that fails as asked, and the warning it must cost."""
    if fails == "nothing listening":
        yield (
            f"http://127.0.0.1:{free_port()}/services/{Webhook.SECRET}",
            "the webhook cannot be reached (ConnectionRefusedError: Connection refused)",
        )
        return
    answers = {
        "never answering": (Webhook(answer=None), "the webhook did not answer within 5 s"),
        "answering 500": (Webhook(answer=500), "the webhook answered HTTP 500"),
        # Each byte beats the socket's timeout: only the bound on the whole post ends it.
        "trickling its answer": (Webhook(trickle=True), f"the webhook did not answer within {POST_SECONDS} s"),
    }
    receiver, warning = answers[fails]
    with receiver:
        yield receiver.url, warning


@pytest.mark.parametrize(
    ("fails", "outcome"),
    [
        *((fails, outcome) for fails in ("never answering", "answering 500", "nothing listening")
          for outcome in ("success", "failure")),
        ("trickling its answer", "failure"),
    ],
)  # fmt: skip
def test_a_webhook_that_fails_costs_one_warning_and_never_the_exit_status(
    fails: str,
    outcome: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="prefect")
    monkeypatch.setenv(f"{ENV_PREFIX}NOTIFY_ON", "always")
    if outcome == "failure":
        monkeypatch.setattr(FLOWS[FIRST].result, "run", broken)
    with webhook_that(fails) as (url, warning):
        monkeypatch.setenv(f"{ENV_PREFIX}SLACK_WEBHOOK_URL", url)
        started = time.monotonic()
        status = main(["run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path)])
        took = time.monotonic() - started
    assert status == (0 if outcome == "success" else 1)
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: run alert not sent: {warning}"
    ]
    wall = float(re.search(r"wall=([0-9.]+)s", caplog.text).group(1))  # the run itself, its clusters closed
    assert took - wall < ALERT_BOUND_SECONDS, (took, wall)
    for text in (out, err, caplog.text):
        assert Webhook.SECRET not in text and "/services/" not in text


@pytest.mark.parametrize("where", ["project variable", "prefect secret"])
def test_a_webhook_url_that_is_no_url_is_refused_without_being_shown(
    where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    secret = "ftp://hooks.example/T0/B0/leaked-if-shown"
    secrets = {}
    if where == "project variable":
        monkeypatch.setenv(f"{ENV_PREFIX}SLACK_WEBHOOK_URL", secret)
        variable = f"{ENV_PREFIX}SLACK_WEBHOOK_URL"
    else:  # as Prefect reads PREFECT__CONTEXT__SECRETS__SLACK_WEBHOOK_URL when it is imported
        secrets = {"SLACK_WEBHOOK_URL": secret}
        variable = "PREFECT__CONTEXT__SECRETS__SLACK_WEBHOOK_URL (Prefect's secret SLACK_WEBHOOK_URL)"
    with prefect.context(secrets=secrets):
        assert main(["run", FIRST]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {variable}: the value (not shown: a webhook URL is a secret) is not an http(s) URL; give the "
        "incoming webhook's URL such as https://hooks.slack.com/services/..., or leave it empty for no alerts\n"
    )


def test_prefect_run_records_and_alerts_through_prefects_own_secret(
    tmp_path: Path, history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declaration = FLOWS[FIRST]
    with Webhook() as receiver:
        done = run(
            [sys.executable, "-m", "prefect", "run", "-p", declaration.source, *smoke_args(declaration, tmp_path)],
            PREFECT__CONTEXT__SECRETS__SLACK_WEBHOOK_URL=receiver.url,
            **{f"{ENV_PREFIX}NOTIFY_ON": "always"},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = listed(history)
    assert (row["flow"], row["state"], row["exit_status"]) == (FIRST, "Success", 0)
    [alert] = receiver.texts
    assert alert.startswith(f"{PROJECT}: flow {FIRST} ended Success (exit status 0)\n")


# --- the run history ----------------------------------------------------------------------------


def corrupt(folder: Path) -> tuple[Path, str]:
    path = folder / "runs.sqlite"
    path.write_bytes(b"not a database, " * 512)
    return path, "DatabaseError: file is not a database); move the file aside and the next run starts a new one"


def unwritable(folder: Path) -> tuple[Path, str]:
    (folder / "file").write_text("a file, where the history's folder should be", encoding="utf-8")
    return folder / "file" / "runs.sqlite", "OperationalError: unable to open database file)"


@pytest.mark.parametrize("spoilt", [corrupt, unwritable])
def test_a_history_that_cannot_be_written_costs_one_warning_never_the_run(
    spoilt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path, reason = spoilt(tmp_path)
    monkeypatch.setenv(f"{ENV_PREFIX}HISTORY", str(path))
    assert main(["run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{FIRST}: Success\n")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: run history {path}: not recorded ({reason}"]


def test_a_history_locked_past_its_timeout_costs_one_warning_never_the_run(
    tmp_path: Path, history: Path, capsys: pytest.CaptureFixture
) -> None:
    assert begin(history, entry("another")) is not None  # the file exists, in WAL mode
    locker = sqlite3.connect(history, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path)]) == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: run history {history}: not recorded (OperationalError: database is locked)"]
    assert [row["flow"] for row in listed(history)] == ["another"]


def entry(flow: str, **ended: object) -> RunEntry:
    """A row as a run writes it, of ``flow``; ended as ``ended`` says."""
    started = now()
    row = RunEntry(f"{flow}-{time.monotonic_ns()}", flow, {"n": 1}, "local", "cluster-1", started)
    return replace(row, **ended) if ended else row


def test_writers_at_once_lose_no_row(history: Path, capsys: pytest.CaptureFixture) -> None:
    """Runs, a serve and the runs command write and read at once: each writes in short transactions."""

    def runs(writer: int) -> None:
        for _ in range(20):
            started = entry(f"writer-{writer}")
            row = begin(history, started)
            finish(history, row, replace(started, ended=now(), state="Success", exit_status=0))
            listed(history, limit=5)

    writers = [threading.Thread(target=runs, args=(writer,)) for writer in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(WAIT_SECONDS)
    rows = listed(history, limit=1000)
    assert len(rows) == 120 and {row["state"] for row in rows} == {"Success"}
    assert capsys.readouterr().err == ""


def test_two_runs_at_once_are_both_recorded(tmp_path: Path, history: Path) -> None:
    arguments = command("run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path))
    processes = [
        subprocess.Popen(
            arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=project_env(), cwd=PROJECT_ROOT
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=WAIT_SECONDS)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    rows = listed(history)
    assert [(row["state"], row["exit_status"]) for row in rows] == [("Success", 0)] * 2
    assert len({row["run_id"] for row in rows}) == len({row["pid"] for row in rows}) == 2


def test_a_run_killed_outright_shows_as_unfinished(
    tmp_path: Path, history: Path, capsys: pytest.CaptureFixture
) -> None:
    held = [sys.executable, str(PROJECT_ROOT / "tests" / "held_open.py")]
    arguments = [*held, "-m", PACKAGE, "run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path)]
    status, output = run_held_and_signalled(arguments, signal.SIGKILL, project_env(HELD_OPEN_AT="compute"))
    assert status == -signal.SIGKILL, output
    [row] = listed(history)
    assert (row["state"], row["ended"], row["exit_status"]) == ("unfinished", None, None)
    assert main(["runs", "--failed", "--json"]) == 0
    assert [shown["run_id"] for shown in json.loads(capsys.readouterr().out)] == [row["run_id"]]


def test_runs_shows_the_history_newest_first_and_filters_it(history: Path, capsys: pytest.CaptureFixture) -> None:
    for flow, status in [("first", 0), ("second", 1), ("first", 1), ("second", 0)]:
        started = entry(flow)
        ended = replace(started, ended=now(), exit_status=status, state="Success" if status == 0 else "Failed")
        finish(history, begin(history, started), replace(ended, error=None if status == 0 else f"{flow} broke"))
    newest_first = ["second", "first", "second", "first"]
    shown = {
        (): newest_first,
        ("--flow", "first"): ["first", "first"],
        ("--failed",): ["first", "second"],
        ("--limit", "1"): ["second"],
    }
    for arguments, flows in shown.items():
        assert main(["runs", "--json", *arguments]) == 0
        assert [row["flow"] for row in json.loads(capsys.readouterr().out)] == flows, arguments
    assert main(["runs"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["flow", "started", "state", "took", "exit", "backend", "cluster", "failure"]
    assert [line.split()[0] for line in lines] == newest_first and lines[1].endswith("first broke")
    assert main(["runs", "--limit", "0"]) == 2
    assert capsys.readouterr().err == "error: --limit: '0' is not a whole number from 1 to 10000\n"


# --- how Prefect starts flows without the command line ----------------------------------------


def test_a_flow_with_a_schedule_of_its_own_runs_once_wherever_it_is_run(
    tmp_path: Path, history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flow.run()`` on a scheduled flow would loop on its schedule; run, the tests and prefect run run once."""
    monkeypatch.setattr(FLOWS[FIRST].flow, "schedule", IntervalSchedule(interval=timedelta(seconds=1)))
    assert main(["run", FIRST, *smoke_args(FLOWS[FIRST], tmp_path)]) == 0
    scheduled = tmp_path / "scheduled.py"
    scheduled.write_text(SCHEDULED_FLOW, encoding="utf-8")
    done = run([sys.executable, "-m", "prefect", "run", "-p", str(scheduled), "--schedule"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(row["flow"], row["state"]) for row in listed(history)] == [("scheduled", "Success"), (FIRST, "Success")]


@pytest.mark.parametrize("name", FLOWS)
def test_a_run_prefects_own_runner_starts_is_recorded_and_alerted(
    name: str,
    tmp_path: Path,
    history: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a Prefect agent does: its runner, not ``ClusterFlow.run``, runs the flow. Such a runner keeps
    its task states to itself (the flow's final state holds none), so the record names no task."""
    caplog.set_level("INFO", logger="prefect")
    declaration = FLOWS[name]
    monkeypatch.setattr(declaration.result, "run", broken)
    state = FlowRunner(flow=declaration.flow).run(parameters=declaration.smoke_parameters(tmp_path))
    assert state.is_failed()
    assert caplog.text.count("dashboard=") == caplog.text.count(CLOSED) == 1, caplog.text
    [row] = listed(history)
    failure = f"flow failed: {state.message}"
    assert (row["flow"], row["state"], row["failed_task"], row["error"]) == (name, "Failed", None, failure)
    assert (row["backend"], row["exit_status"]) == ("local", 1) and f"name={row['cluster']} " in caplog.text
    [alert] = webhook.texts
    assert alert.splitlines()[:2] == [f"{PROJECT}: flow {name} ended Failed (exit status 1)", failure]


@pytest.mark.parametrize("name", FLOWS)
def test_prefect_build_serializes_each_flow_for_a_prefect_server(name: str, tmp_path: Path) -> None:
    """``prefect build`` is what ``prefect register`` sends to a Server; the Server reads it back with this schema."""
    declaration = FLOWS[name]
    built = tmp_path / "flows.json"
    done = run(
        [sys.executable, "-m", "prefect", "build", "-p", declaration.source, "-o", str(built)],
        PREFECT__HOME_DIR=str(tmp_path / "prefect"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [serialized] = json.loads(built.read_text(encoding="utf-8"))["flows"]
    assert serialized["name"] == name and serialized["storage"]["path"] == declaration.source
    assert serialized["schedule"] is None
    flow = FlowSchema().load(serialized)
    assert sorted(task.name for task in flow.tasks) == sorted(task.name for task in declaration.flow.tasks)
