"""Jinja filters the template needs to keep user answers as data in every file format."""

from __future__ import annotations

import json

from jinja2.ext import Extension


def literal(value: object) -> str:
    """Quote a value as a double-quoted string literal.

    JSON string syntax is also valid TOML basic-string and YAML double-quoted syntax;
    keeping non-ASCII characters raw (``ensure_ascii=False``) avoids the surrogate
    escapes that TOML rejects for characters outside the Basic Multilingual Plane.
    """
    return json.dumps(str(value), ensure_ascii=False)


class LiteralExtension(Extension):
    """Registers the ``literal`` filter."""

    def __init__(self, environment):  # noqa: ANN001 - Jinja's signature
        super().__init__(environment)
        environment.filters["literal"] = literal
