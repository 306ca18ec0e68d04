"""The template's quoting filters keep any answer literal in every format it lands in.

The hook refuses line breaks and control characters, but ``--accept-hooks no`` skips
the hooks, so the filters must be right on their own.
"""

from __future__ import annotations

import ast
import json
import sys

import pytest
import yaml
from hookkit import MARKDOWN, load_extensions, plain_text

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FILTERS = load_extensions()

AWKWARD = [
    "plain",
    'O\'Brien "Quoted"',
    '"""',
    "'''",
    "back\\slash \\n \\u0041",
    "tab\tline\nfeed\rreturn",
    "\x00\x1f\x7f\x80\x85\x9f",
    "\u2028\u2029",
    "Ünïcødé 日本語 عربى 😀 👩\u200d💻 𝔘𝔫𝔦",
    "\ufeff\u200e",
    "${{ secrets.TOKEN }} {% raw %}",
    "# not a comment",
    "key: value",
    "- item",
    "[section]",
    "x" * 1000,
]


@pytest.mark.parametrize("text", AWKWARD, ids=range(len(AWKWARD)))
def test_literal_reads_back_identically_everywhere(text: str) -> None:
    quoted = FILTERS.literal(text)
    assert "\n" not in quoted and "\r" not in quoted
    assert json.loads(quoted) == text
    assert ast.literal_eval(quoted) == text
    assert tomllib.loads(f"value = {quoted}")["value"] == text
    assert yaml.safe_load(f"value: {quoted}")["value"] == text
    assert yaml.safe_load(f"- {quoted}\n- after") == [text, "after"]


MARKDOWN_AWKWARD = [
    "```",
    "~~~ fenced",
    "# C# #",
    "- item",
    "+ item",
    "* item",
    "1. first",
    "2024) year",
    "> quote",
    "    indented four",
    "---",
    "***",
    "___",
    "=== x",
    "<b>bold</b> <!-- c -->",
    "*em* _em_ **strong** __strong__",
    "`code` ``code``",
    "[link](http://example.com) ![img](x.png) [ref]: http://example.com",
    "<http://example.com>",
    "a | b | c",
    "~~strike~~",
    "&amp; &copy; &#65;",
    "back\\slash \\* \\",
    "cost $5 and $10",
    'O\'Brien "Quoted" """ \'\'\'',
    "Ünïcødé 日本語 😀 👩\u200d💻",
    "two  spaces\tand\nlines",
]


@pytest.mark.parametrize("text", MARKDOWN_AWKWARD, ids=range(len(MARKDOWN_AWKWARD)))
def test_markdown_text_shows_as_written(text: str) -> None:
    escaped = FILTERS.markdown_text(text)
    expected = " ".join(text.split())
    paragraph = MARKDOWN.parse(escaped)
    assert [token.type for token in paragraph] == ["paragraph_open", "inline", "paragraph_close"]
    assert plain_text(paragraph[1]) == expected
    heading = MARKDOWN.parse(f"# {escaped}")
    assert [token.type for token in heading] == ["heading_open", "inline", "heading_close"]
    assert plain_text(heading[1]) == expected


def test_markdown_text_leaves_ordinary_names_alone() -> None:
    for text in ("Timeseries Pipeline", "Prefect 1 flows that run on Dask or on Coiled.", "Zoë's 日本語 pipeline"):
        assert FILTERS.markdown_text(text) == text
