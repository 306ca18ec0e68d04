"""Jinja filters the template needs to keep user answers as data in every file format."""

from __future__ import annotations

import json
import re
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

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


RULES_FILE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}" / "plumbing" / "rules.py"


def settings_table() -> list[tuple[str, str]]:
    """Every setting of the generated project with what it means, from its one table (``rules.SETTINGS``)."""
    spec = spec_from_file_location("project_rules", RULES_FILE)
    assert spec is not None and spec.loader is not None
    rules = module_from_spec(spec)
    spec.loader.exec_module(rules)
    return [(name, setting.meaning) for name, setting in rules.SETTINGS.items()]


class LiteralExtension(Extension):
    """Registers the filters that keep answers literal (``literal``, ``markdown_text``), the
    global ``template_root``, the folder holding this template, and ``settings_table``."""

    def __init__(self, environment):  # noqa: ANN001 - Jinja's signature
        super().__init__(environment)
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
        environment.globals["settings_table"] = settings_table
        environment.filters["literal"] = literal
        environment.filters["markdown_text"] = markdown_text
