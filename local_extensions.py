"""Jinja filters the template needs to keep user answers as data in every file format."""

from __future__ import annotations

import json
import logging
import re
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

# Characters that JSON leaves raw but that are not plain text elsewhere: DEL is forbidden
# raw in TOML, C1 controls raw in YAML (which folds NEL into a space), and YAML 1.1 counts
# U+2028/U+2029 as line breaks. JSON, TOML, YAML and Python all read \uXXXX as the character.
UNSAFE_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")
# Markdown punctuation that starts inline markup (code, emphasis, links, HTML, entities,
# tables, strikethrough, an ATX heading's closing #, GitHub math). CommonMark shows any
# backslash-escaped ASCII punctuation as itself.
MARKDOWN_INLINE = re.compile(r"[\\`*_\[\]<>&|~#$]")
# What makes a line's start a list item, thematic break or setext underline.
MARKDOWN_LINE_START = re.compile(r"^(?:[-+=]|\d+[.)])")


def literal(value: object) -> str:
    """Quote a value as a double-quoted string literal.

    JSON string syntax is also valid TOML basic-string and YAML double-quoted syntax;
    keeping non-ASCII characters raw (``ensure_ascii=False``) avoids the surrogate
    escapes that TOML rejects for characters outside the Basic Multilingual Plane.
    """
    quoted = json.dumps(str(value), ensure_ascii=False)
    return UNSAFE_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def markdown_text(value: object) -> str:
    """Escape free text so that Markdown shows it as written, on one line.

    A name such as ``C# *fast* <tools>`` or a description starting with ``1.`` would
    otherwise become markup, and three backticks would swallow the rest of the README.
    Whitespace runs collapse to one space, as Markdown renders them anyway.
    """
    text = MARKDOWN_INLINE.sub(lambda match: "\\" + match.group(), " ".join(str(value).split()))
    start = MARKDOWN_LINE_START.match(text)
    if start:
        marker = start.group()
        text = marker[:-1] + "\\" + marker[-1] + text[len(marker) :]
    return text


# The template's own folder: the pre-generation hook reads the generated project's rules
# from it (cookiecutter and cruft both render hooks with this extension loaded).
TEMPLATE_ROOT = Path(__file__).resolve().parent


PACKAGE_DIR = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"
# ``NAME = value`` in settings.py, where the value is a plain literal (not rendered from an answer).
ASSIGNMENT = re.compile(r"^([A-Z_]+) = (\"[^\"]*\"|[0-9]+)", re.MULTILINE)


def settings_table() -> list[dict[str, str | None]]:
    """Every setting of the generated project: its name, what it means (its one table,
    ``rules.SETTINGS``), the answer that sets its default, and otherwise its default from settings.py."""
    spec = spec_from_file_location("project_rules", PACKAGE_DIR / "plumbing" / "rules.py")
    assert spec is not None and spec.loader is not None
    rules = module_from_spec(spec)
    spec.loader.exec_module(rules)
    literals = dict(ASSIGNMENT.findall((PACKAGE_DIR / "settings.py").read_text(encoding="utf-8")))
    return [
        {"name": name, "meaning": setting.meaning, "answer": setting.answer, "default": literals.get(name)}
        for name, setting in rules.SETTINGS.items()
    ]


class LiteralExtension(Extension):
    """Registers the filters that keep answers literal (``literal``, ``markdown_text``), the
    global ``template_root``, the folder holding this template, and ``settings_table``."""

    def __init__(self, environment):  # noqa: ANN001 - Jinja's signature
        super().__init__(environment)
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
        environment.globals["settings_table"] = settings_table
        environment.filters["literal"] = literal
        environment.filters["markdown_text"] = markdown_text


# Where cookiecutter logs that a hook failed: "Stopping generation because pre_gen_project
# hook script didn't exit successfully", from 2.7 on with a traceback of its own code.
HOOKS_LOGGER = "cookiecutter.hooks"


class RefusalRecordFilter(logging.Filter):
    """Drops cookiecutter's record of this template's pre-generation hook failing.

    The hook refuses bad answers by printing one ``error:`` line per problem (and the
    retry hint) and exiting 1; cookiecutter has no quieter way for a hook to stop
    generation, and its record (a 12-line traceback through ``cookiecutter/hooks.py``)
    says nothing about the answer at fault. A hook that crashes prints its own traceback,
    so nothing is lost. Cookiecutter logs the record while working in the failing
    template's folder, so other templates' hooks, this template's other hook and a Jinja
    error rendering the hook (a template bug) are logged as cookiecutter logs them.
    """

    def __init__(self, template_root: Path) -> None:
        super().__init__()
        self.template_root = template_root

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.args != ("pre_gen_project",) or not (error is None or isinstance(error, FailedHookException)):
            return True
        try:
            return Path.cwd().resolve() != self.template_root
        except OSError:  # the working folder is gone: not this template's hook run
            return True


class RefusalsWithoutTraceback(Extension):
    """Installs ``RefusalRecordFilter`` once per process when cookiecutter (or cruft)
    loads this template's extensions, which it does before any hook runs."""

    def __init__(self, environment):  # noqa: ANN001 - Jinja's signature
        super().__init__(environment)
        logger = logging.getLogger(HOOKS_LOGGER)
        if not any(getattr(installed, "template_root", None) == TEMPLATE_ROOT for installed in logger.filters):
            logger.addFilter(RefusalRecordFilter(TEMPLATE_ROOT))
