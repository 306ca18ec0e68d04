"""``python -m <package> diagram``: a PNG per flow, or one clear line naming what is missing."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.plumbing.cli import main

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, project_env

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What drawing needs beyond pip's reach (dot) and the diagram extra (the graphviz package).
needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None or importlib.util.find_spec("graphviz") is None,
    reason="needs Graphviz's dot program on PATH (conda install graphviz, apt-get install graphviz, brew install "
    "graphviz) and the graphviz Python package (.[diagram])",
)


@needs_graphviz
def test_writes_one_png_per_flow(tmp_path: Path, capsys) -> None:
    output = tmp_path / "pictures"
    assert main(["diagram", "--output-dir", str(output)]) == 0
    assert sorted(p.name for p in output.iterdir()) == sorted(f"{name}.png" for name in FLOWS)
    for name in FLOWS:
        assert (output / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    assert capsys.readouterr().out.split() == [str(output / f"{name}.png") for name in FLOWS]


def test_missing_dot_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    """An empty PATH hides ``dot`` wherever this runs; the interpreter is called by its full path."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    output = tmp_path / "pictures"
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "diagram", "--output-dir", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
        env=project_env(PATH=str(empty)),
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: drawing diagrams needs ") and "Graphviz's dot program on PATH" in line
    assert "apt-get install graphviz" in line and "brew install graphviz" in line
    assert not output.exists()


def test_missing_graphviz_package_is_one_line_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # how Python marks a module as not importable
    output = tmp_path / "pictures"
    assert main(["diagram", "--output-dir", str(output)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: drawing diagrams needs the graphviz Python package")
    assert "pip install -e '.[diagram]'" in line
    assert not output.exists()


@needs_graphviz
def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    assert main(["diagram", "--output-dir", str(taken / "pictures")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and str(taken) in line
