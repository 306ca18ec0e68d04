"""Read a setting from its ``<PREFIX>_*`` environment variable, or its default in settings.py.

Every value goes through ``rules.py``, the rules the answers were checked with when the
project was generated, so a refusal reads the same in both places and names the variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ..settings import ENV_PREFIX
from .rules import RULES, RuleError, unknown_variables


class SettingError(ValueError):
    """A setting that cannot work; the message names the variable, the value and what is allowed."""


def variable(key: str) -> str:
    """The environment variable of setting ``key`` (``COILED_N_WORKERS``, ...)."""
    return ENV_PREFIX + key


def read_setting(key: str, default: str, environ: Mapping[str, str] | None = None) -> object:
    """The setting's value as the project uses it; SettingError if its rule refuses it."""
    environ = os.environ if environ is None else environ
    name = variable(key)
    raw = environ.get(name, default)
    try:
        return RULES[key](raw)
    except RuleError as error:
        where = name if name in environ else f"{name} (unset; the default in settings.py)"
        raise SettingError(f"{where}: {error}") from None


_warned = False


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """Once per process: a warning for every ``<PREFIX>_*`` variable no setting reads (a typo
    would otherwise be ignored without a word)."""
    global _warned
    if _warned:
        return
    _warned = True
    for warning in unknown_variables(os.environ if environ is None else environ, ENV_PREFIX):
        print(warning, file=sys.stderr)


@contextmanager
def exit_on_refusal(*refusals: type[Exception], code: int = 2) -> Iterator[None]:
    """Turn a refusal into its one line and an exit with ``code``.

    For the code Prefect calls (``prefect run -p``): Prefect shows any exception with
    its traceback, while an exit passes through it untouched.
    """
    try:
        yield
    except (SettingError, *refusals) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(code) from None
