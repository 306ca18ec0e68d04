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
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
WHOLE_NUMBER = re.compile(r"[1-9][0-9]*")
SECONDS = re.compile(NUMBER)
FLAGS = {"true": True, "false": False}


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
    """A folder (relative to where the command runs) or an ``s3://``, ``gs://`` or ``abfs://`` URL with a bucket."""
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
        "where flows keep the results of their costly tasks: a folder (relative to where you run), or an s3://, "
        "gs:// or abfs:// URL (docs/resume.md)",
    ),
    "RESUME": Setting(flag, "restore kept results instead of computing them, as run --resume does (docs/resume.md)"),
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
