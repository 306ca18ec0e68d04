"""The template README's layout tree and flow diagrams show what a default bake really contains."""

from __future__ import annotations

import re
from pathlib import Path

from bakery import TEMPLATE_ROOT, bake
from expected_files import expected_flows

README = (TEMPLATE_ROOT / "README.md").read_text(encoding="utf-8")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def layout_tree() -> str:
    section = README.split("## What you get", 1)[1]
    return section.split("```", 2)[1]


def test_every_file_in_the_layout_tree_is_baked(tmp_path: Path) -> None:
    project = bake(tmp_path)
    baked = {p.name for p in project.rglob("*")}
    names = re.findall(r"[\w.-]+\.(?:py|yml|yaml|toml|md)\b|\bMakefile\b|\bLICENSE\b", layout_tree())
    assert len(names) > 10
    assert sorted(set(names) - baked) == []


def test_readme_shows_a_diagram_of_each_flow() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    images.remove("docs/benchmark.png")  # the benchmark chart, checked in test_bench.py
    assert images == [f"docs/{flow}.png" for flow in expected_flows("both")]
    for image in images:
        assert (TEMPLATE_ROOT / image).read_bytes().startswith(PNG_SIGNATURE), image
