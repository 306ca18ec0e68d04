"""Validate every answer before anything is written; one clear line per problem.

Answers arrive as data: the template renders them into a JSON string literal
(``tojson`` twice), so quotes, backslashes or triple quotes in an answer stay text.
Choice answers are re-checked because ``--replay`` hands them over unchecked. The
answers that are cluster settings go through the generated project's own rules
(``plumbing/rules.py``, loaded from the template), so a value refused here is refused
with the same words when it comes from an environment variable at run time. So does
the Coiled workflow's cron schedule: the rule ``serve --cron`` follows.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
import sys
import sysconfig
import unicodedata
from collections.abc import Callable
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821
TEMPLATE_ROOT = Path(json.loads({{template_root | tojson | tojson}}))  # noqa: F821

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
# The project slug follows Coiled's rule for names (rules.NAME), as Coiled names and tags
# clusters with it (cloud labels: 63 characters).
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
# The derived project_slug when the project_name has no letter or digit (cookiecutter.json).
NO_SLUG = "-"


def jinja_name(name: str) -> str:
    """A templated file name as it is on disk (the braces spelled so Jinja leaves this file alone)."""
    return "{" * 2 + f"cookiecutter.{name}" + "}" * 2


def load_rules(root: Path) -> ModuleType:
    """The generated project's ``plumbing/rules.py``, read from the template itself."""
    path = root / jinja_name("project_slug") / jinja_name("package_name") / "plumbing" / "rules.py"
    spec = spec_from_file_location("project_rules", path)
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = load_rules(TEMPLATE_ROOT)
shown = RULES.shown


def as_text(value: object) -> str | None:
    """Text answers are strings (the setting rules read a replay file's whole numbers too)."""
    return value if isinstance(value, str) else None


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
    if fits(value, RULES.NAME, SLUG_MAX):
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


def setting_check(key: str) -> Callable[[object], str | None]:
    return lambda value: RULES.problem(key, value)


def schedule_problem(value: object) -> str | None:
    """The Coiled workflow's cron schedule: the project's own cron rule (``serve --cron`` reads it too),
    or empty for no schedule. Not a setting: only the workflow file holds it."""
    if isinstance(value, str) and not value.strip():
        return None
    try:
        RULES.cron(value)
    except RULES.RuleError as error:
        return f"{error} (in UTC), or leave it empty for no schedule"
    return None


def field_checks(answers: dict) -> dict[str, Callable[[object], str | None]]:
    """One check per field, in the order problems are reported."""
    checks: dict[str, Callable[[object], str | None]] = {
        field: setting_check(RULES.ANSWERS[field]) if field in RULES.ANSWERS else choice_check(allowed)
        for field, allowed in CHOICES.items()
    }
    checks.update(
        project_name=text_check(TEXT_LIMITS["project_name"]),
        project_slug=slug_problem,
        package_name=package_check(reserved_names(answers)),
        description=text_check(TEXT_LIMITS["description"]),
        author_name=text_check(TEXT_LIMITS["author_name"]),
        author_email=email_problem,
    )
    checks.update({field: setting_check(key) for field, key in RULES.ANSWERS.items() if field not in CHOICES})
    checks["coiled_schedule"] = schedule_problem
    return checks


def cross_field_problems(answers: dict) -> list[str]:
    """Checked only when both fields are valid on their own, so each field has one line."""
    try:
        memory = RULES.SETTINGS["COILED_WORKER_MEMORY"].rule(answers.get("coiled_worker_memory"))
        cpus = RULES.SETTINGS["COILED_WORKER_CPU"].rule(answers.get("coiled_worker_cpu"))
    except RULES.RuleError:
        return []
    problem = RULES.memory_per_cpu_problem(memory, cpus, "coiled_worker_cpu")
    return [] if problem is None else [f"coiled_worker_memory: {problem}"]


def name_without_slug(answers: dict) -> bool:
    """The project_slug is cookiecutter.json's stand-in for a name that slugifies to nothing
    (no letter or digit at all), so the name is the answer to correct."""
    name = answers.get("project_name")
    return answers.get("project_slug") == NO_SLUG and isinstance(name, str) and not any(c.isalnum() for c in name)


def empty_slug_problems(answers: dict) -> list[str]:
    """A project_name with no letter or digit leaves nothing to name folders and packages by."""
    name = answers.get("project_name")
    if not name_without_slug(answers) or not name.strip():  # a blank name is reported as empty
        return []
    return [
        f"project_name: {shown(name)} has no letter or digit to make the project_slug and package_name from; "
        "use a name with letters or digits (in a replay file, correct project_slug and package_name too)"
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
    no_slug = empty_slug_problems(answers)
    derived = ("project_slug", "package_name") if name_without_slug(answers) else ()
    problems = []
    for field, check in field_checks(answers).items():
        problem = None if field in derived else check(answers.get(field))
        if problem is not None:
            problems.append(f"{field}: {problem}")
        if field == "project_name":
            problems += no_slug
    return problems + cross_field_problems(answers) + destination_problems(answers, project_dir)


def replay_hint(answers: dict) -> str | None:
    """How to generate again without typing every answer: the replay file cookiecutter wrote
    just before this hook, if it holds these very answers (cruft, for one, writes none)."""
    try:
        from cookiecutter.config import get_user_config

        replay_dir = Path(get_user_config()["replay_dir"])
        replay_file = replay_dir / f"{TEMPLATE_ROOT.name}.json"
        recorded = json.loads(replay_file.read_text(encoding="utf-8"))["cookiecutter"]
    except Exception:  # no cookiecutter config or replay file to point at: say nothing
        return None
    if recorded != answers:
        return None
    command = [
        "cookiecutter",
        "--replay-file",
        str(replay_file),
        "-o",
        str(answers.get("_output_dir", ".")),
        str(answers.get("_template", TEMPLATE_ROOT)),
    ]
    return f"to retry without typing every answer again, correct them in {replay_file} and run: {shlex.join(command)}"


def main() -> int:
    problems = problems_with(ANSWERS, Path.cwd())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    hint = replay_hint(ANSWERS) if problems else None
    if hint is not None:
        print(hint, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
