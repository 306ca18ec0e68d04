"""Helpers for the hook tests: load a hook without Jinja, run cookiecutter in isolation."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import yaml
from bakery import DEFAULTS, TEMPLATE_ROOT
from cookiecutter.main import cookiecutter
from markdown_it import MarkdownIt
from markdown_it.token import Token

ANSWERS_LINE = "ANSWERS = json.loads({{cookiecutter | tojson | tojson}})  # noqa: F821"
TEMPLATE_ROOT_LINE = "TEMPLATE_ROOT = Path(json.loads({{template_root | tojson | tojson}}))  # noqa: F821"
# The only lines of a hook Jinja renders.
JINJA_LINES = (ANSWERS_LINE, TEMPLATE_ROOT_LINE)
# Every prompt answered, with the derived names spelled out so that a bad value in one
# field never changes another.
# CommonMark with the GitHub table and strikethrough extensions.
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
BASE_ANSWERS = {
    **{key: value for key, value in DEFAULTS.items() if not key.startswith("_")},
    "project_slug": "timeseries-pipeline",
    "package_name": "timeseries_pipeline",
}


def load_hook(name: str, answers: dict | None = None) -> ModuleType:
    """The hook's source as a module, with ``answers`` and this template's folder in place of
    its Jinja lines, as cookiecutter renders them."""
    path = TEMPLATE_ROOT / "hooks" / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    assert source.count(ANSWERS_LINE) == 1, f"{path.name} must hold exactly one line {ANSWERS_LINE!r}"
    assert source.count(TEMPLATE_ROOT_LINE) <= 1, f"{path.name} holds {TEMPLATE_ROOT_LINE!r} more than once"
    source = source.replace(ANSWERS_LINE, f"ANSWERS = {answers!r}")
    source = source.replace(TEMPLATE_ROOT_LINE, f"TEMPLATE_ROOT = Path({str(TEMPLATE_ROOT)!r})")
    module = ModuleType(name)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def load_extensions() -> ModuleType:
    """The template's Jinja filters module, loaded from the template root by path."""
    spec = importlib.util.spec_from_file_location("local_extensions", TEMPLATE_ROOT / "local_extensions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def user_config(folder: Path, default_context: dict | None = None) -> Path:
    """A cookiecutter config that keeps replay files and clones inside ``folder``."""
    config = {"cookiecutters_dir": str(folder / "cookiecutters"), "replay_dir": str(folder / "replay")}
    if default_context:
        config["default_context"] = default_context
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == config
    return path


def run_cli(*options: str, cwd: Path, pairs: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """The cookiecutter command line, as a user runs it, on this template."""
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", *options, str(TEMPLATE_ROOT), *pairs],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_lines(stderr: str) -> list[str]:
    """The lines the hooks print for problems (cookiecutter's own output is left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def bake_isolated(folder: Path, **answers: object) -> tuple[Path, dict]:
    """Bake with ``answers`` through the API; returns the project and every answer the
    hooks saw (derived ones included), read back from the replay file."""
    folder.mkdir(parents=True, exist_ok=True)
    config = user_config(folder)
    project = cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context=answers, output_dir=str(folder / "out"), config_file=str(config))  # fmt: skip
    replay = json.loads((folder / "replay" / f"{TEMPLATE_ROOT.name}.json").read_text(encoding="utf-8"))
    return Path(project), replay["cookiecutter"]


def plain_text(inline: Token) -> str:
    """The text of an inline Markdown token, which must hold no markup at all."""
    assert inline.type == "inline" and inline.children is not None
    assert {child.type for child in inline.children} <= {"text"}, [child.type for child in inline.children]
    return "".join(child.content for child in inline.children)
