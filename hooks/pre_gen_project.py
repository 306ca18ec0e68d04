"""Validate every answer before anything is written; one clear line per problem.

Answers arrive as data: the template renders them into a JSON string literal
(``tojson`` twice), so quotes, backslashes or triple quotes in an answer stay text.
Choice answers are re-checked because ``--replay`` hands them over unchecked. The hook
runs in the user's cookiecutter environment, which has neither dask nor coiled: the
duration and memory formats below are the subsets of dask's ``parse_timedelta`` and
``parse_bytes`` (what coiled uses) that the template's tests prove both agree on.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import sysconfig
import unicodedata
from collections.abc import Callable
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821

# Every choice prompt with its values in cookiecutter.json order (a template test keeps
# them equal); executor first because it decides which files exist at all.
CHOICES = {
    "executor": ("both", "LocalExecutor", "DaskExecutor"),
    "default_cluster": ("local", "coiled"),
    "python_version": ("3.11", "3.10", "3.9"),
    "coiled_spot_policy": ("spot_with_fallback", "on-demand", "spot"),
    "license": ("MIT", "BSD-3-Clause", "Apache-2.0", "none"),
    "github_actions": ("yes", "no"),
}
# Free text, with its longest length (PyPI refuses a summary over 512 characters).
TEXT_LIMITS = {"project_name": 200, "description": 512, "author_name": 200}
# Line breaks, controls and lone surrogates break the one-line files answers land in.
BREAKING_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")
# Coiled's own rule for workspace slugs (coiled.utils.ACCOUNT_REGEX); the project slug
# follows it too, as Coiled names and tags clusters with it (cloud labels: 63 characters).
NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
SLUG_MAX = 63
PACKAGE = re.compile(r"[a-z][a-z0-9_]*")
PACKAGE_MAX = 40
# Importing the project from its own folder puts its package first on sys.path, so a
# package must not take the name of a module the project or its tools import. The
# template's requirements (``_requirements``) and the standard library are added below;
# the core ones are also named here, for answers replayed without ``_requirements``.
RESERVED = (
    "prefect", "dask", "distributed", "coiled", "pandas", "test", "tests", "build", "dist", "conftest",
    "setuptools", "pkg_resources", "pip", "toolz", "fsspec", "click", "yaml", "jinja2", "psutil", "tblib",
    "zict", "packaging", "requests", "urllib3", "rich",
)  # fmt: skip
# An ASCII local part (setuptools writes Author-email with email.headerregistry, which
# refuses any other) at a domain that may be internationalised.
EMAIL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL_DOMAIN = r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_][^\W\d_]+"
EMAIL = re.compile(EMAIL_ATOM + r"(?:\." + EMAIL_ATOM + ")*@" + EMAIL_DOMAIN)
EMAIL_MAX = 254
# Cloud region names such as us-east-1 (AWS), us-east1 (GCP) or eastus2 (Azure).
REGION = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
CLOUD_NAMES = {
    "coiled_workspace": (
        NAME,
        63,
        "lowercase letters and digits joined by single dashes or underscores (e.g. my-team)",
    ),
    "coiled_region": (
        REGION,
        40,
        "lowercase letters and digits joined by single dashes, starting with a letter (e.g. us-east-1, us-east1, eastus2)",
    ),
}
WHOLE_NUMBER = re.compile(r"[1-9][0-9]*")
COUNT_MAX = {"coiled_n_workers": 1000, "coiled_worker_cpu": 1024}
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
DURATION_UNITS = {
    **dict.fromkeys(("s", "second", "seconds"), 1),
    **dict.fromkeys(("m", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 604800),
}
DURATION = re.compile(rf"{NUMBER} ?({'|'.join(DURATION_UNITS)})", re.IGNORECASE | re.ASCII)
IDLE_MIN, IDLE_MAX = 60, 7 * 86400
GIB = 2**30
MEMORY_UNITS = {"mib": 2**20, "mb": 10**6, "gib": GIB, "gb": 10**9, "tib": 2**40, "tb": 10**12}
MEMORY = re.compile(rf"{NUMBER} ?({'|'.join(MEMORY_UNITS)})", re.IGNORECASE | re.ASCII)
# Cloud VMs offer from about 0.9 GiB (GCP highcpu) to about 55 GiB (AWS u-24tb1) per vCPU.
GIB_PER_VCPU = (0.5, 64)


def shown(value: object) -> str:
    """The value as a quoted one-line repr, shortened so a long answer keeps the line readable."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value)


def as_text(value: object, numeric: bool = False) -> str | None:
    """Answers are strings; a replay file may also hold whole numbers for numeric fields."""
    if isinstance(value, str):
        return value
    if numeric and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def breaking_character(value: str) -> str | None:
    for char in value:
        code = ord(char)
        if unicodedata.category(char) in BREAKING_CATEGORIES or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
            return char
    return None


def choice_check(allowed: tuple[str, ...]) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value in allowed:
            return None
        return f"{shown(value)} is not allowed; choose one of {', '.join(allowed)}"

    return check


def text_check(limit: int) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        allowed = f"use one line of at most {limit} characters"
        text = as_text(value)
        if text is None:
            return f"{shown(value)} is not text; {allowed}"
        bad = breaking_character(text)
        if bad is not None:
            return f"{shown(text)} contains a line break or control character (U+{ord(bad):04X}); {allowed}"
        if not text.strip():
            return f"{shown(text)} is empty; {allowed}"
        if len(text) > limit:
            return f"{shown(text)} is {len(text)} characters long; {allowed}"
        return None

    return check


def fits(value: object, pattern: re.Pattern[str], longest: int) -> bool:
    text = as_text(value)
    return text is not None and pattern.fullmatch(text) is not None and len(text) <= longest


def slug_problem(value: object) -> str | None:
    if fits(value, NAME, SLUG_MAX):
        return None
    return (
        f"{shown(value)} is not allowed; use 1 to {SLUG_MAX} lowercase ASCII letters and digits, "
        "separated by single dashes or underscores"
    )


def stdlib_names(listed: frozenset[str] | None = None) -> frozenset[str]:
    """Standard library module names: ``sys.stdlib_module_names`` from Python 3.10, listed
    from the standard library folder on 3.9 (the user's cookiecutter may run there)."""
    if listed is not None:
        return listed
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = {path.stem for path in stdlib.glob("*.py")}
    names |= {path.name for path in stdlib.iterdir() if (path / "__init__.py").exists()}
    names |= {path.name.split(".")[0] for path in (stdlib / "lib-dynload").glob("*.so")}
    return frozenset(names | set(sys.builtin_module_names))


def reserved_names(answers: dict) -> frozenset[str]:
    """Module names a package would shadow: the project's requirements, their common
    dependencies, the project's own folders and the standard library."""
    requirements = answers.get("_requirements", {})
    declared = {name.split("[")[0].lower().replace("-", "_") for names in requirements.values() for name in names}
    return frozenset(declared) | frozenset(RESERVED) | stdlib_names(getattr(sys, "stdlib_module_names", None))


def package_check(reserved: frozenset[str]) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if not fits(value, PACKAGE, PACKAGE_MAX):
            return (
                f"{shown(value)} is not allowed; use 1 to {PACKAGE_MAX} lowercase ASCII letters, digits and "
                "underscores, starting with a letter"
            )
        if keyword.iskeyword(value):
            return f"{shown(value)} is a Python keyword; choose a name that is not"
        if value in reserved:
            return f"{shown(value)} would shadow the module of the same name; choose a name no import uses"
        return None

    return check


def email_problem(value: object) -> str | None:
    if fits(value, EMAIL, EMAIL_MAX):
        return None
    return f"{shown(value)} is not an e-mail address such as you@example.com"


def cloud_name_check(field: str) -> Callable[[object], str | None]:
    pattern, longest, rule = CLOUD_NAMES[field]

    def check(value: object) -> str | None:
        if value == "" or fits(value, pattern, longest):
            return None
        return f"{shown(value)} is not allowed; leave it empty for Coiled's default or use up to {longest} {rule}"

    return check


def count(field: str, value: object) -> int | None:
    text = as_text(value, numeric=True)
    if text is None or not WHOLE_NUMBER.fullmatch(text) or int(text) > COUNT_MAX[field]:
        return None
    return int(text)


def count_check(field: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if count(field, value) is not None:
            return None
        return f"{shown(value)} is not a whole number from 1 to {COUNT_MAX[field]}"

    return check


def duration_seconds(value: object) -> float | None:
    """Seconds in a duration written the way both this hook and dask read it."""
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()] if match else None


def idle_timeout_problem(value: object) -> str | None:
    seconds = duration_seconds(value)
    if seconds is not None and IDLE_MIN <= seconds <= IDLE_MAX:
        return None
    return (
        f"{shown(value)} is not a duration from 1 minute to 7 days such as '20 minutes', '45m', '2 hours' or "
        "'1 day' (units: s, m, h, d, w or their names)"
    )


def memory_bytes(value: object) -> int | None:
    """Bytes in a memory size written the way both this hook and dask read it."""
    match = MEMORY.fullmatch(value) if isinstance(value, str) else None
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()]) if match else None


def memory_problem(value: object) -> str | None:
    size = memory_bytes(value)
    if size is not None and size >= GIB:
        return None
    return (
        f"{shown(value)} is not a memory size of at least 1 GiB such as '16GiB' or '8 GB' "
        "(units: GiB, GB, MiB, MB, TiB, TB)"
    )


def field_checks(answers: dict) -> dict[str, Callable[[object], str | None]]:
    """One check per field, in the order problems are reported."""
    checks: dict[str, Callable[[object], str | None]] = {
        field: choice_check(allowed) for field, allowed in CHOICES.items()
    }
    checks.update(
        project_name=text_check(TEXT_LIMITS["project_name"]),
        project_slug=slug_problem,
        package_name=package_check(reserved_names(answers)),
        description=text_check(TEXT_LIMITS["description"]),
        author_name=text_check(TEXT_LIMITS["author_name"]),
        author_email=email_problem,
        coiled_workspace=cloud_name_check("coiled_workspace"),
        coiled_region=cloud_name_check("coiled_region"),
        coiled_n_workers=count_check("coiled_n_workers"),
        coiled_worker_cpu=count_check("coiled_worker_cpu"),
        coiled_worker_memory=memory_problem,
        coiled_idle_timeout=idle_timeout_problem,
    )
    return checks


def cross_field_problems(answers: dict) -> list[str]:
    """Combinations no cloud offers: Coiled would find no VM type and fail at cluster start.

    Checked only when both fields are valid on their own, so each field has one line.
    """
    cpus = count("coiled_worker_cpu", answers.get("coiled_worker_cpu"))
    memory = answers.get("coiled_worker_memory")
    size = memory_bytes(memory)
    if cpus is None or size is None or memory_problem(memory) is not None:
        return []
    per_cpu = size / GIB / cpus
    low, high = GIB_PER_VCPU
    if low <= per_cpu <= high:
        return []
    return [
        f"coiled_worker_memory: {shown(memory)} is {per_cpu:.3g} GiB per vCPU with coiled_worker_cpu {cpus}; "
        f"use {low} to {high} GiB per vCPU, the range cloud VMs offer"
    ]


def destination_problems(answers: dict, project_dir: Path) -> list[str]:
    """Cookiecutter only reaches this hook for an existing folder when told to overwrite
    (``-f``); refusing keeps every file of the user's as it was."""
    if project_dir.is_dir() and any(project_dir.iterdir()):
        return [
            f"project_slug: {shown(answers.get('project_slug'))} is the existing, non-empty folder "
            f"{str(project_dir)!r}; nothing was changed (choose another project_slug or output directory)"
        ]
    return []


def problems_with(answers: dict, project_dir: Path) -> list[str]:
    """Every problem as ``<field>: <value> ... <allowed>``, choices first."""
    problems = []
    for field, check in field_checks(answers).items():
        problem = check(answers.get(field))
        if problem is not None:
            problems.append(f"{field}: {problem}")
    return problems + cross_field_problems(answers) + destination_problems(answers, project_dir)


def main() -> int:
    problems = problems_with(ANSWERS, Path.cwd())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
