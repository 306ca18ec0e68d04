"""The run history: every run of a flow, in one SQLite file, and what ``runs`` shows of it.

A run nobody watched is known afterwards only from what it left: which flow ran, with
which parameters, where, when, how it ended and why. ``ClusterFlow.run`` (every run from
``run``, ``serve`` and ``prefect run -p``) inserts a row when the run starts and
completes it when the run ends, so a run killed outright (SIGKILL, a lost machine)
stays in the history as unfinished instead of vanishing.

Several processes write at once (a ``serve`` beside manual runs, two terminals), so the
file is in SQLite's WAL mode (readers never block the writer), every write is one short
statement, and a writer waits up to ``BUSY_SECONDS`` for another one's lock. The history
serves the runs, never the other way round: a database that stays locked, cannot be
written or is corrupt costs one warning line, and the run goes on as if it were not there.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# How long a write waits for another process's lock before it gives up (with a warning).
BUSY_SECONDS = 5
RUNNING = "Running"  # a row's state until its run ends
UNFINISHED = "unfinished"  # a row whose process is gone without ending it (SIGKILL, a lost machine)
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    parameters TEXT NOT NULL,
    backend TEXT NOT NULL,
    cluster TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    state TEXT NOT NULL,
    failed_task TEXT,
    error TEXT,
    exit_status INTEGER,
    report TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
)
"""
COLUMNS = ("flow", "started", "state", "took", "exit", "backend", "cluster", "failure")


def now() -> datetime:
    """Now in UTC: rows from machines in other time zones sort together."""
    return from_timestamp(time.time())


def from_timestamp(seconds: float) -> datetime:
    """A POSIX time in UTC."""
    return datetime.fromtimestamp(seconds, timezone.utc)  # noqa: UP017 (datetime.UTC is 3.11's; 3.9 is supported)


@dataclass(frozen=True)
class RunEntry:
    """One run as the history records it and an alert describes it."""

    run_id: str
    flow: str
    parameters: Mapping[str, Any]
    backend: str  # local, coiled, gateway, attached; empty for a run refused before it was planned
    cluster: str | None  # the cluster's name, or the scheduler's address; None before one is known
    started: datetime
    ended: datetime | None = None
    state: str = RUNNING  # Prefect's final state (Success, Failed, ...), Interrupted or Refused
    failed_task: str | None = None  # the first task that failed, by name
    error: str | None = None  # why the run did not succeed, in the words the command ends with
    exit_status: int | None = None  # what the command exits with for this run
    report: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started).total_seconds()

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0


def warn(path: Path, error: Exception) -> None:
    """The one line a history that cannot be written costs."""
    hint = "; move the file aside and the next run starts a new one" if "not a database" in str(error) else ""
    print(f"warning: run history {path}: not recorded ({type(error).__name__}: {error}){hint}", file=sys.stderr)


@contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (each statement is its own short transaction), WAL on, table made."""
    with closing(sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(SCHEMA)
        yield connection


def row_values(entry: RunEntry) -> dict[str, Any]:
    values = asdict(entry)
    values["parameters"] = json.dumps(dict(entry.parameters), default=str, sort_keys=True)
    values["started"] = entry.started.isoformat(timespec="milliseconds")
    values["ended"] = entry.ended.isoformat(timespec="milliseconds") if entry.ended else None
    return values


def begin(path: Path | None, entry: RunEntry) -> int | None:
    """Insert the row of a run that starts (or, ended already, of a whole run); its id, or None (with a
    warning) if it could not be written."""
    if path is None:
        return None
    values = row_values(entry)
    try:
        with database(path) as connection:
            cursor = connection.execute(
                f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join(':' + key for key in values)})", values
            )
            return cursor.lastrowid
    except (sqlite3.Error, OSError) as error:
        warn(path, error)
        return None


def finish(path: Path | None, row: int | None, entry: RunEntry) -> None:
    """Complete the row of a run that ended. Without a row (its start could not be written, and said
    so) nothing is tried again: one warning per run is enough."""
    if path is None or row is None:
        return
    values = row_values(entry)
    ending = ("cluster", "ended", "state", "failed_task", "error", "exit_status")
    try:
        with database(path) as connection:
            connection.execute(
                f"UPDATE runs SET {', '.join(f'{key} = :{key}' for key in ending)} WHERE id = :id",
                {**{key: values[key] for key in ending}, "id": row},
            )
    except (sqlite3.Error, OSError) as error:
        warn(path, error)


def alive(host: str, pid: int) -> bool:
    """Whether the process that wrote a row still runs (only known on its own machine)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True


def as_shown(record: Mapping[str, Any]) -> dict[str, Any]:
    """A row as ``runs`` shows it: parameters as an object, an unended run Running or unfinished."""
    shown = dict(record)
    shown["parameters"] = json.loads(record["parameters"])
    if record["ended"] is None and not alive(record["host"], record["pid"]):
        shown["state"] = UNFINISHED
    return shown


def listed(path: Path, flow: str | None = None, failed: bool = False, limit: int = 20) -> list[dict[str, Any]]:
    """The recorded runs, newest first: of ``flow`` only, and only those that did not succeed, if asked.
    sqlite3.Error for a history that cannot be read."""
    if not path.exists():
        return []
    query = "SELECT * FROM runs" + (" WHERE flow = ?" if flow else "") + " ORDER BY started DESC, id DESC"
    found = []
    with closing(sqlite3.connect(path, timeout=BUSY_SECONDS)) as connection:
        connection.row_factory = sqlite3.Row
        for record in connection.execute(query, (flow,) if flow else ()):
            shown = as_shown(dict(record))
            if failed and (shown["exit_status"] == 0 or shown["state"] == RUNNING):
                continue
            found.append(shown)
            if len(found) == limit:
                break
    return found


def table(records: Sequence[Mapping[str, Any]]) -> str:
    """The runs as aligned columns, start times in this machine's time zone."""
    lines = [COLUMNS] + [table_row(record) for record in records]
    widths = [max(len(line[column]) for line in lines) for column in range(len(COLUMNS))]
    widths[-1] = 0  # the last column is not padded
    padded = ("  ".join(line[column].ljust(widths[column]) for column in range(len(COLUMNS))) for line in lines)
    return "\n".join(line.rstrip() for line in padded)


def table_row(record: Mapping[str, Any]) -> tuple[str, ...]:
    started = datetime.fromisoformat(record["started"])
    took = ""
    if record["ended"] is not None:
        took = f"{(datetime.fromisoformat(record['ended']) - started).total_seconds():.1f}s"
    return (
        record["flow"],
        started.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        record["state"],
        took,
        "" if record["exit_status"] is None else str(record["exit_status"]),
        record["backend"],
        record["cluster"] or "",
        record["error"] or "",
    )
