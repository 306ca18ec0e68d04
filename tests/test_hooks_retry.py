"""A failed generation names the answer at fault and says how to retry without retyping.

A project_name with no letter or digit slugifies to nothing; cookiecutter would then
report that the output folder itself "already exists". And cookiecutter writes the
answers to its replay file before the hook runs, so the hook can point at that file and
the ``--replay-file`` command that bakes again from it once it is corrected.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import TEMPLATE_ROOT
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hookkit import error_lines, user_config

NO_SLUG = (
    "has no letter or digit to make the project_slug and package_name from; use a name with letters or digits "
    "(in a replay file, correct project_slug and package_name too)"
)


@pytest.mark.parametrize("name", ["\U0001f389\U0001f680", "!!! ---", "\u2603"])
def test_a_name_that_slugifies_to_nothing_is_refused_by_name(name: str, tmp_path: Path, capfd) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context={"project_name": name}, output_dir=str(out), config_file=str(user_config(tmp_path)))  # fmt: skip
    assert error_lines(capfd.readouterr().err) == [f"error: project_name: {name!r} {NO_SLUG}"]
    assert list(out.iterdir()) == []


def test_a_blank_name_is_refused_as_empty(tmp_path: Path, capfd) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context={"project_name": "   "}, output_dir=str(out), config_file=str(user_config(tmp_path)))  # fmt: skip
    assert error_lines(capfd.readouterr().err) == [
        "error: project_name: '   ' is empty; use one line of at most 200 characters"
    ]
    assert list(out.iterdir()) == []


def cookiecutter_cli(args: list[str], config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The command line as a user runs it, with their user config in COOKIECUTTER_CONFIG."""
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", *args],
        cwd=cwd,
        env={**os.environ, "COOKIECUTTER_CONFIG": str(config)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_failed_generation_says_how_to_retry_and_the_command_works(tmp_path: Path) -> None:
    config = user_config(tmp_path)
    out = tmp_path / "out"
    failed = cookiecutter_cli(
        ["--no-input", "-o", str(out), str(TEMPLATE_ROOT), "coiled_worker_memory=16"], config, tmp_path
    )
    assert failed.returncode != 0
    replay_file = tmp_path / "replay" / f"{TEMPLATE_ROOT.name}.json"
    command = ["cookiecutter", "--replay-file", str(replay_file), "-o", str(out), str(TEMPLATE_ROOT)]
    hint = f"to retry without typing every answer again, correct them in {replay_file} and run: {shlex.join(command)}"
    assert hint in failed.stderr.splitlines(), failed.stderr

    replay = json.loads(replay_file.read_text(encoding="utf-8"))
    replay["cookiecutter"]["coiled_worker_memory"] = "16GiB"
    replay_file.write_text(json.dumps(replay), encoding="utf-8")
    retried = cookiecutter_cli(shlex.split(hint.partition(" and run: ")[2])[1:], config, tmp_path)
    assert retried.returncode == 0, retried.stderr
    settings = (out / "timeseries-pipeline" / "timeseries_pipeline" / "settings.py").read_text(encoding="utf-8")
    assert 'COILED_WORKER_MEMORY = "16GiB"' in settings


def test_no_hint_without_a_replay_file_of_these_answers(tmp_path: Path) -> None:
    """With the replay folder elsewhere (--config-file), no wrong file is named."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    failed = cookiecutter_cli(
        ["--no-input", "--config-file", str(user_config(tmp_path)), "-o", str(tmp_path / "out"), str(TEMPLATE_ROOT), "coiled_n_workers=0"],
        user_config(other),
        tmp_path,
    )  # fmt: skip
    assert error_lines(failed.stderr) == ["error: coiled_n_workers: '0' is not a whole number from 1 to 1000"]
    assert "to retry" not in failed.stderr
