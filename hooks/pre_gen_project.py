"""Validate every answer before anything is written; one clear line per problem.

Answers arrive as data: the template renders them into a JSON string literal
(``tojson`` twice), so quotes, backslashes or triple quotes in an answer stay text.
Choice answers are re-checked because ``--replay``, a user config's
``default_context`` and ``extra_context`` all bypass cookiecutter's own prompt check.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821

CHOICES = {
    "executor": ("both", "LocalExecutor", "DaskExecutor"),
    "default_cluster": ("local", "coiled"),
    "python_version": ("3.11", "3.10", "3.9"),
    "coiled_spot_policy": ("spot_with_fallback", "on-demand", "spot"),
    "license": ("MIT", "BSD-3-Clause", "Apache-2.0", "none"),
    "github_actions": ("yes", "no"),
}
# Modules the generated project imports or that commonly sit on sys.path: a package of
# the same name would shadow them.
SHADOWED = {
    "prefect", "dask", "distributed", "coiled", "pandas", "numpy", "pyarrow", "tornado",
    "cloudpickle", "msgpack", "marshmallow", "pendulum", "pytest", "test", "tests",
    "graphviz", "setuptools", "pip", "site", "conftest",
} | set(getattr(sys, "stdlib_module_names", ()))  # fmt: skip
SLUG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CLOUD_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MEMORY = re.compile(r"^\d+(\.\d+)?\s*(GiB|GB|MiB|MB|TiB|TB)$", re.IGNORECASE)
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$")
MAX_WORKERS = 1000
MAX_PACKAGE_LENGTH = 40
FREE_TEXT = ("project_name", "description", "author_name")


def check_choices(answers: dict) -> list[str]:
    problems = []
    for field, allowed in CHOICES.items():
        value = answers.get(field)
        if value not in allowed:
            problems.append(f"{field}: {value!r} is not allowed; choose one of {', '.join(allowed)}")
    return problems


def check_names(answers: dict) -> list[str]:
    problems = []
    for field in FREE_TEXT:
        value = str(answers.get(field, ""))
        if not value.strip():
            problems.append(f"{field}: must not be empty")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            problems.append(f"{field}: {value!r} contains a line break or control character; use one line of text")
    slug = answers.get("project_slug", "")
    if not SLUG.match(slug) or len(slug) > 64:
        problems.append(
            f"project_slug: {slug!r} is not allowed; use 1-64 lowercase letters, digits and single dashes, "
            "starting with a letter"
        )
    package = answers.get("package_name", "")
    if not PACKAGE.match(package) or len(package) > MAX_PACKAGE_LENGTH:
        problems.append(
            f"package_name: {package!r} is not allowed; use 1-{MAX_PACKAGE_LENGTH} lowercase ASCII letters, digits "
            "and underscores, starting with a letter"
        )
    elif keyword.iskeyword(package):
        problems.append(f"package_name: {package!r} is a Python keyword; choose another name")
    elif package in SHADOWED:
        problems.append(f"package_name: {package!r} would shadow the module of the same name; choose another name")
    email = answers.get("author_email", "")
    if not EMAIL.match(email):
        problems.append(f"author_email: {email!r} is not an e-mail address such as you@example.com")
    return problems


def check_coiled(answers: dict) -> list[str]:
    problems = []
    for field in ("coiled_workspace", "coiled_region"):
        value = answers.get(field, "")
        if value and (not CLOUD_NAME.match(value) or len(value) > 63):
            problems.append(
                f"{field}: {value!r} is not allowed; leave it empty for Coiled's default or use lowercase letters, "
                "digits and dashes (e.g. us-east-1)"
            )
    for field, upper in (("coiled_n_workers", MAX_WORKERS), ("coiled_worker_cpu", 1024)):
        value = str(answers.get(field, ""))
        if not value.isdigit() or not 1 <= int(value) <= upper:
            problems.append(f"{field}: {value!r} is not a whole number from 1 to {upper}")
    memory = str(answers.get("coiled_worker_memory", ""))
    if not MEMORY.match(memory):
        problems.append(f"coiled_worker_memory: {memory!r} is not a memory size such as 16GiB or 8 GB")
    timeout = str(answers.get("coiled_idle_timeout", ""))
    match = DURATION.match(timeout)
    if not match or float(match.group(1)) <= 0:
        problems.append(f"coiled_idle_timeout: {timeout!r} is not a duration such as '20 minutes', '45m' or '2 hours'")
    return problems


def check_destination(project_dir: Path) -> list[str]:
    """Cookiecutter only reaches this hook for an existing folder when told to overwrite."""
    if any(project_dir.iterdir()):
        return [
            f"project_slug: the folder {str(project_dir)!r} already exists and is not empty; "
            "nothing was changed (choose another project_slug or output directory)"
        ]
    return []


def problems_with(answers: dict, project_dir: Path) -> list[str]:
    """All problems, choices first; the destination check comes last."""
    return check_choices(answers) + check_names(answers) + check_coiled(answers) + check_destination(project_dir)


def main() -> int:
    problems = problems_with(ANSWERS, Path.cwd())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
