"""Every setting of the project, in one table, and the rules its values follow wherever they come from.

The same rules read the answers given when the project was generated (the template's
pre-generation hook loads this very file) and the ``<PREFIX>_*`` environment overrides
read at run time, so a value is accepted or refused with the same words in both places.
That is why this module imports nothing outside the standard library: the hook runs in
the environment of whoever generates the project, which has neither dask nor coiled.
The duration and memory formats are the subsets of dask's ``parse_timedelta`` and
``parse_bytes`` (what coiled reads) on which both agree; the template's tests prove it.

``SETTINGS`` is the one place each setting is named: its default is the constant of that
name in settings.py, its environment variable is ``<PREFIX>_`` and the name, and the
docs' settings table is generated from it. A rule takes the raw text (surrounding spaces and tabs are ignored) and returns the value as the
project uses it, or raises ``RuleError`` with ``<value> is not ...; <what is allowed>``;
the caller puts the name of the answer or the variable in front.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

Rule = Callable[[object], object]

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"  # [0-9] is ASCII only: no superscripts or other scripts' digits
DURATION_UNITS = {
    **dict.fromkeys(("s", "second", "seconds"), 1),
    **dict.fromkeys(("m", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 604800),
}
DURATION = re.compile(rf"{NUMBER} ?({'|'.join(DURATION_UNITS)})", re.IGNORECASE | re.ASCII)
GIB = 2**30
MEMORY_UNITS = {"mib": 2**20, "mb": 10**6, "gib": GIB, "gb": 10**9, "tib": 2**40, "tb": 10**12}
MEMORY = re.compile(rf"{NUMBER} ?({'|'.join(MEMORY_UNITS)})", re.IGNORECASE | re.ASCII)
# Longest number text read at all: longer ones are out of every range below, and Python
# refuses to convert integers of more than 4300 digits.
NUMBER_MAX_CHARS = 30
# Cloud VMs offer from about 0.9 GiB (GCP highcpu) to about 55 GiB (AWS u-24tb1) per vCPU.
GIB_PER_VCPU = (0.5, 64)
# Coiled's own rule for workspace slugs (coiled.utils.ACCOUNT_REGEX); cluster names follow
# it too, as clouds label resources with them (63 characters at most).
NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
NAME_MAX = 63
# Cloud region names such as us-east-1 (AWS), us-east1 (GCP) or eastus2 (Azure).
REGION = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# A running scheduler's address, as dask's Client takes it: tcp://, tls://, ws:// or wss://
# (or no scheme: tcp), then a host name, an IPv4 address or a bracketed IPv6 one, and a port.
ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ws|wss)://)?(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?):([0-9]{1,5})",
    re.IGNORECASE | re.ASCII,
)
BACKENDS = ("local", "coiled", "gateway")
# A dask-gateway server's URL, as dask_gateway.Gateway takes it.
URL = re.compile(r"https?://[a-z0-9.:\[\]-]+(?:/[!-~]*)?", re.IGNORECASE | re.ASCII)
URL_MAX_CHARS = 2000
# Where kept results go: a folder, or a URL of an object store: its scheme and the extra with its library.
STORES = {"s3": "s3", "gs": "gcs", "abfs": "azure"}
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*)://(.*)", re.IGNORECASE | re.ASCII | re.DOTALL)
WHOLE_NUMBER = re.compile(r"[1-9][0-9]*")
SECONDS = re.compile(NUMBER)
FLAGS = {"true": True, "false": False}
# Line breaks and control characters: text with one breaks log lines and the files it lands in.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
PATH_MAX_CHARS = 4096
# Cron, as cron(8), GitHub Actions' ``schedule:`` and croniter (Prefect's CronSchedule) all read it:
# five fields of numbers, names, ``*``, lists, ranges and steps. Each field: its name, range and names.
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, WEEKDAYS),
)
# Days in each month at most (February in a leap year): a day no listed month has never comes.
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
CRON_ITEM = re.compile(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?", re.IGNORECASE | re.ASCII)
CRON_MAX_CHARS = 200
CRON_EXAMPLES = (
    "five fields, minute hour day-of-month month day-of-week, such as '0 6 * * *' or '*/15 8-18 * * mon-fri'"
)


class RuleError(ValueError):
    """A value a setting cannot take; the message names the value and what is allowed."""


class SettingError(ValueError):
    """A setting that cannot work; the message names the variable, the value and what is allowed."""


def shown(value: object) -> str:
    """The value as a quoted one-line repr, shortened so a long value keeps the line readable."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value)


def text_of(value: object) -> str | None:
    """The value as text without surrounding spaces or tabs (None if it is no text at all);
    a replay file may hold whole numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip(" \t") if isinstance(value, str) else None


def duration_seconds(text: str) -> float | None:
    """Seconds in a duration written the way both these rules and dask read it."""
    match = DURATION.fullmatch(text) if len(text) <= NUMBER_MAX_CHARS else None
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()] if match else None


def memory_bytes(text: str) -> int | None:
    """Bytes in a memory size written the way both these rules and dask read it."""
    match = MEMORY.fullmatch(text) if len(text) <= NUMBER_MAX_CHARS else None
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()]) if match else None


def choice(*allowed: str) -> Rule:
    def read(value: object) -> str:
        text = text_of(value)
        if text is None or text not in allowed:
            raise RuleError(f"{shown(value)} is not allowed; choose one of {', '.join(allowed)}")
        return text

    return read


def cluster(value: object) -> str:
    """A backend name, or the address of a scheduler someone else runs (the project attaches to it)."""
    text = text_of(value)
    match = ADDRESS.fullmatch(text) if text is not None and len(text) <= URL_MAX_CHARS else None
    if text in BACKENDS or (match and 1 <= int(match.group(1)) <= 65535):
        return text
    raise RuleError(
        f"{shown(value)} is not allowed; choose one of {', '.join(BACKENDS)} or a scheduler address such as "
        "tcp://host:8786"
    )


def gateway_url(value: object) -> str:
    """An optional dask-gateway URL: empty means dask's own ``gateway.address`` configuration."""
    text = text_of(value)
    if text is None or (text and not (URL.fullmatch(text) and len(text) <= URL_MAX_CHARS)):
        raise RuleError(
            f"{shown(value)} is not allowed; leave it empty for dask's gateway.address or give the gateway's URL "
            "such as https://gateway.example.com"
        )
    return text


def results_location(value: object) -> str:
    """A folder (relative to the project folder) or an ``s3://``, ``gs://`` or ``abfs://`` URL with a bucket."""
    text = text_of(value) or ""
    scheme = SCHEME.fullmatch(text)
    fits = bool(text) and len(text) <= URL_MAX_CHARS and not CONTROL.search(text)
    if scheme is not None:
        fits = fits and scheme.group(1) in STORES and bool(scheme.group(2).strip("/"))
    if not fits:
        raise RuleError(
            f"{shown(value)} is not allowed; give a folder such as .results, or a URL such as s3://bucket/results "
            f"({', '.join(f'{store}://' for store in STORES)})"
        )
    return text


def flag(value: object) -> bool:
    text = (text_of(value) or "").lower()
    if text not in FLAGS:
        raise RuleError(f"{shown(value)} is not allowed; choose one of {', '.join(FLAGS)}")
    return FLAGS[text]


def whole_number(high: int) -> Rule:
    def read(value: object) -> int:
        text = text_of(value)
        if text is None or not WHOLE_NUMBER.fullmatch(text) or len(text) > NUMBER_MAX_CHARS or int(text) > high:
            raise RuleError(f"{shown(value)} is not a whole number from 1 to {high}")
        return int(text)

    return read


def cloud_name(pattern: re.Pattern[str], longest: int, rule: str) -> Rule:
    """An optional name: empty means Coiled's default."""

    def read(value: object) -> str:
        text = text_of(value)
        if text is None or (text and not (pattern.fullmatch(text) and len(text) <= longest)):
            raise RuleError(
                f"{shown(value)} is not allowed; leave it empty for Coiled's default or use up to {longest} {rule}"
            )
        return text

    return read


def duration(low: int, high: int, spelled: str) -> Rule:
    """A duration in the text form Coiled passes to dask, within ``low`` to ``high`` seconds."""

    def read(value: object) -> str:
        text = text_of(value) or ""
        seconds = duration_seconds(text)
        if seconds is None or not low <= seconds <= high:
            raise RuleError(
                f"{shown(value)} is not a duration from {spelled} such as '20 minutes', '45m', '2 hours' or "
                "'1 day' (units: s, m, h, d, w or their names)"
            )
        return text

    return read


def memory(value: object) -> str:
    """A memory size with its unit: a bare number means bytes to dask but GiB to Coiled."""
    text = text_of(value) or ""
    size = memory_bytes(text)
    if size is None or size < GIB:
        raise RuleError(
            f"{shown(value)} is not a memory size of at least 1 GiB such as '16GiB' or '8 GB' "
            "(units: GiB, GB, MiB, MB, TiB, TB)"
        )
    return text


def seconds(high: int, low: int = 0) -> Rule:
    def read(value: object) -> float:
        text = text_of(value) or ""
        if not SECONDS.fullmatch(text) or len(text) > NUMBER_MAX_CHARS or not low <= float(text) <= high:
            raise RuleError(f"{shown(value)} is not a number of seconds from {low} to {high}")
        return float(text)

    return read


def history_file(value: object) -> str:
    """A file path on one line; empty means no history is kept."""
    text = text_of(value)
    if text is None or len(text) > PATH_MAX_CHARS or CONTROL.search(text):
        raise RuleError(
            f"{shown(value)} is not allowed; give a file path on one line (relative paths start at the project "
            "folder), or leave it empty to keep no history"
        )
    return text


def webhook_url(value: object) -> str:
    """An optional webhook URL. The value is never repeated in a message: a webhook's URL is its password."""
    text = text_of(value)
    if text is None or (text and not (URL.fullmatch(text) and len(text) <= URL_MAX_CHARS)):
        raise RuleError(
            "the value (not shown: a webhook URL is a secret) is not an http(s) URL; give the incoming webhook's "
            "URL such as https://hooks.slack.com/services/..., or leave it empty for no alerts"
        )
    return text


def cron(value: object) -> str:
    """A five-field cron schedule, its fields joined by single spaces; RuleError naming the field at fault."""
    text = text_of(value)
    problem = cron_problem(text)
    if problem is not None:
        raise RuleError(f"{shown(value)} is not a cron schedule: {problem}; use {CRON_EXAMPLES}")
    return " ".join(str(text).split())


def cron_problem(text: str | None) -> str | None:
    """Why a cron schedule is refused: the first field at fault, or a day that never comes."""
    if text is None:
        return "it is not text"
    if len(text) > CRON_MAX_CHARS:
        return f"it is longer than {CRON_MAX_CHARS} characters"
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        return f"it has {len(fields)} field{'' if len(fields) == 1 else 's'}"
    for index, (name, low, high, names) in enumerate(CRON_FIELDS):
        problem = cron_field_problem(fields[index], name, low, high, names)
        if problem is not None:
            return problem
    return never_problem(fields)


def cron_field_problem(spelled: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    """Why one field of a cron schedule is refused: each comma-separated item is ``*``, a value or a
    range ``a-b``, optionally with a step ``/n``."""
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    for item in spelled.split(","):
        match = CRON_ITEM.fullmatch(item)
        if match is None:
            return f"{name} {item!r} is not *, a value, a range a-b or a step */n ({allowed})"
        span, step = match.groups()
        bounds = [low, high] if span == "*" else [cron_value(part, low, names) for part in span.split("-")]
        if any(bound is None or not low <= bound <= high for bound in bounds):
            return f"{name} {item!r} is outside {allowed}"
        if bounds[0] > bounds[-1]:
            return f"{name} {item!r} runs backwards (write it low-high)"
        if step is not None and len(bounds) == 1:
            return f"{name} {item!r} has a step after a single value; write */n or a-b/n"
        if step is not None and not 1 <= int(step) <= high - low + 1:
            return f"{name} {item!r} has a step outside 1-{high - low + 1}"
    return None


def cron_value(part: str, low: int, names: tuple[str, ...]) -> int | None:
    """A field's value from its number or its three-letter name (any case); None if it is neither."""
    if part.lower() in names:
        return names.index(part.lower()) + low
    return int(part) if part.isdigit() and len(part) <= 2 else None


def cron_values(spelled: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    """Every value an accepted field selects."""
    selected: set[int] = set()
    for item in spelled.split(","):
        span, _, step = item.partition("/")
        # Only called on accepted fields, whose every value reads.
        bounds = [low, high] if span == "*" else [int(cron_value(part, low, names) or 0) for part in span.split("-")]
        selected.update(range(bounds[0], bounds[-1] + 1, int(step or 1)))
    return selected


def never_problem(fields: list[str]) -> str | None:
    """A day of the month that none of the listed months has (e.g. '0 0 30 2 *') never comes; cron would wait
    forever. With a day of the week given too, cron runs on either, so such a schedule still runs."""
    if fields[4] != "*":
        return None
    days = cron_values(fields[2], 1, 31, ())
    months = cron_values(fields[3], 1, 12, MONTHS)
    if min(days) > max(MONTH_DAYS[month - 1] for month in months):
        return f"day of month {fields[2]!r} never comes in month {fields[3]!r}"
    return None


# How often ``serve --every`` runs a flow: from a second (tests, demos) to a year.
EVERY = "1 second to 366 days"


def every(value: object) -> str:
    """The interval of ``serve --every``, in the duration form of the other settings."""
    return str(duration(1, 366 * 86400, EVERY)(value))


class Setting(NamedTuple):
    """One setting: the rule its value follows, what it means (the docs' settings table), and the
    generation answer that gave its default in settings.py, if one did."""

    rule: Rule
    meaning: str
    answer: str | None = None


# Every setting, by its name in settings.py; its environment variable is ``<PREFIX>_`` + the name.
SETTINGS: dict[str, Setting] = {
    "CLUSTER": Setting(
        cluster, "where flows compute: local, coiled, gateway, or a scheduler's address", "default_cluster"
    ),
    "LOCAL_N_WORKERS": Setting(whole_number(64), "worker processes (or threads) of the embedded cluster"),
    "LOCAL_THREADS_PER_WORKER": Setting(whole_number(64), "threads per worker of the embedded cluster"),
    "LOCAL_PROCESSES": Setting(flag, "embedded workers as processes (true) or threads of this process (false)"),
    "COILED_WORKSPACE": Setting(
        cloud_name(
            NAME, NAME_MAX, "lowercase letters and digits joined by single dashes or underscores (e.g. my-team)"
        ),
        "Coiled workspace (empty: your default one)",
        "coiled_workspace",
    ),
    "COILED_REGION": Setting(
        cloud_name(
            REGION,
            40,
            "lowercase letters and digits joined by single dashes, starting with a letter "
            "(e.g. us-east-1, us-east1, eastus2)",
        ),
        "cloud region (empty: the workspace's default)",
        "coiled_region",
    ),
    "COILED_N_WORKERS": Setting(whole_number(1000), "workers of a Coiled cluster", "coiled_n_workers"),
    "COILED_WORKER_CPU": Setting(whole_number(1024), "vCPUs per Coiled worker", "coiled_worker_cpu"),
    "COILED_WORKER_MEMORY": Setting(memory, "memory per Coiled worker, e.g. 16GiB", "coiled_worker_memory"),
    # Shorter than a minute stops a cluster between two steps of a run; longer than a week
    # is no backstop for a forgotten one.
    "COILED_IDLE_TIMEOUT": Setting(
        duration(60, 7 * 86400, "1 minute to 7 days"), "Coiled stops a cluster idle this long", "coiled_idle_timeout"
    ),
    "COILED_SPOT_POLICY": Setting(
        choice("spot_with_fallback", "on-demand", "spot"), "spot or on-demand instances", "coiled_spot_policy"
    ),
    "COILED_NAME": Setting(
        cloud_name(
            NAME, NAME_MAX, "lowercase letters and digits joined by single dashes or underscores (e.g. nightly)"
        ),
        "a fixed cluster name, reused while that cluster runs (empty: a new name per run)",
    ),
    # Shorter than a minute loses a cluster to a reconnecting client; longer than a day
    # bills a day for a client that vanished.
    "COILED_NO_CLIENT_TIMEOUT": Setting(
        duration(60, 86400, "1 minute to 1 day"), "Coiled stops a cluster whose client vanished this long ago"
    ),
    "COILED_KEEP": Setting(flag, "keep the cluster for the next run until its idle timeout (or run --keep)"),
    # A longer wait keeps a paid cluster idle for nothing.
    "RETRY_DELAY_SECONDS": Setting(seconds(3600), "wait before a task that failed for a passing reason is retried"),
    # Under a second fails on a busy network; over five minutes is no answer worth waiting for.
    "CONNECT_TIMEOUT_SECONDS": Setting(seconds(300, low=1), "how long a scheduler address or a gateway has to answer"),
    "GATEWAY_ADDRESS": Setting(gateway_url, "the dask-gateway's URL (empty: dask's gateway.address)"),
    "GATEWAY_N_WORKERS": Setting(whole_number(1000), "workers of a dask-gateway cluster"),
    "RESULTS": Setting(
        results_location,
        "where flows keep the results of their costly tasks: a folder (relative: to the project folder), or an s3://, "
        "gs:// or abfs:// URL (docs/resume.md)",
    ),
    "RESUME": Setting(flag, "restore kept results instead of computing them, as run --resume does (docs/resume.md)"),
    "HISTORY": Setting(
        history_file,
        "the SQLite file every run is recorded in, shown by `runs` (relative: to the project folder; empty: none)",
    ),
    "SLACK_WEBHOOK_URL": Setting(
        webhook_url,
        "a Slack-compatible incoming webhook that run alerts go to (empty: Prefect's secret SLACK_WEBHOOK_URL, "
        "else no alerts); a secret: set it in the environment, never in settings.py",
    ),
    "NOTIFY_ON": Setting(
        choice("failure", "always"), "which runs send an alert: failure (every run that did not succeed) or always"
    ),
}
# The generation answers that are settings, with the setting each one is.
ANSWERS = {setting.answer: key for key, setting in SETTINGS.items() if setting.answer}


def problem(key: str, value: object) -> str | None:
    """Why ``value`` is refused for setting ``key``, or None if it is accepted."""
    try:
        SETTINGS[key].rule(value)
    except RuleError as error:
        return str(error)
    return None


def memory_per_cpu_problem(worker_memory: str, worker_cpu: int, cpu_name: str) -> str | None:
    """Combinations no cloud offers: Coiled would find no VM type and fail at cluster start."""
    per_cpu = (memory_bytes(worker_memory) or 0) / GIB / worker_cpu
    low, high = GIB_PER_VCPU
    if low <= per_cpu <= high:
        return None
    return (
        f"{shown(worker_memory)} is {per_cpu:.3g} GiB per vCPU with {cpu_name} {worker_cpu}; "
        f"use {low} to {high} GiB per vCPU, the range cloud VMs offer"
    )


def unknown_variables(environ: Mapping[str, str], prefix: str) -> list[str]:
    """A warning for every ``<prefix>*`` variable that is no setting, naming the closest one."""
    known = [prefix + key for key in SETTINGS]
    warnings = []
    for name in sorted(environ):
        if name.startswith(prefix) and name not in known:
            closest = difflib.get_close_matches(name, known, n=1, cutoff=0)
            warnings.append(
                f"warning: {name} is not a setting of this project and is ignored; did you mean {closest[0]}?"
            )
    return warnings
