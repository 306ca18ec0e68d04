"""What a refused answer looks like: the hook's lines, then cookiecutter's one line, no traceback.

A hook can stop generation only by exiting non-zero; cookiecutter then logs "Stopping
generation because pre_gen_project hook script didn't exit successfully" with a traceback
of its own code (from 2.7) and its command line prints ``Hook script failed (exit status:
1)``. The template's ``RefusalsWithoutTraceback`` extension drops that log record for this
template's pre-generation hook only; the last line is cookiecutter's and stays.

The interactive run answers cookiecutter's real prompts on a pseudo-terminal, as a user
at a terminal does, with every wait bounded.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from bakery import CONTEXT, TEMPLATE_ROOT
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hookkit import BASE_ANSWERS, user_config

COOKIECUTTER_LAST_LINE = "Hook script failed (exit status: 1)"
MEMORY_ERROR = (
    "error: coiled_worker_memory: '16' is not a memory size of at least 1 GiB such as '16GiB' or '8 GB' "
    "(units: GiB, GB, MiB, MB, TiB, TB)"
)
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# How long the whole interactive session may take, prompts and hook included.
SESSION_SECONDS = 120


def retry_hint(replay_file: Path, out: Path) -> str:
    command = ["cookiecutter", "--replay-file", str(replay_file), "-o", str(out), str(TEMPLATE_ROOT)]
    return f"to retry without typing every answer again, correct them in {replay_file} and run: {shlex.join(command)}"


class Terminal:
    """A command on a pseudo-terminal: what it writes, read as it comes, and typed answers."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, replica = pty.openpty()
        # 200 columns, so that no prompt wraps (rich wraps at a terminal's width)
        fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=replica, stdout=replica, stderr=replica, start_new_session=True
        )
        os.close(replica)
        self.output = ""
        self.deadline = time.monotonic() + SESSION_SECONDS

    def read_until(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """Read until ``pattern`` matches the output seen so far (None at end of output)."""
        while (found := pattern.search(self.text())) is None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.process.kill()
                raise AssertionError(f"no {pattern.pattern!r} within {SESSION_SECONDS} s:\n{self.text()[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                chunk = b""
            if not chunk:
                return None
            self.output += chunk.decode("utf-8", errors="replace")
        return found

    def type(self, answer: str) -> None:
        os.write(self.master, answer.encode() + b"\n")

    def finish(self) -> int:
        self.read_until(re.compile(r"(?!)"))  # everything up to the end of the output
        try:
            return self.process.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        finally:
            os.close(self.master)

    def text(self) -> str:
        return ANSI.sub("", self.output).replace("\r\n", "\n")


def test_a_bad_interactive_answer_shows_the_projects_lines_and_cookiecutters_last_line(tmp_path: Path) -> None:
    config = user_config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    inherited = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env = {**inherited, "COOKIECUTTER_CONFIG": str(config), "TERM": "xterm", "NO_COLOR": "1"}
    terminal = Terminal([sys.executable, "-m", "cookiecutter", "-o", str(out), str(TEMPLATE_ROOT)], tmp_path, env)
    memory_prompt = CONTEXT["__prompts__"]["coiled_worker_memory"]
    first = terminal.read_until(re.compile(r"\[1/(\d+)\]"))
    assert first is not None, terminal.text()
    count = int(first.group(1))
    for number in range(1, count + 1):
        prompt = terminal.read_until(re.compile(rf"\[{number}/{count}\] (.*?): $", re.DOTALL))
        assert prompt is not None, terminal.text()
        terminal.type("16" if prompt.group(1).startswith(memory_prompt) else "")
    answered = len(terminal.text())
    status = terminal.finish()

    after_prompts = [line for line in terminal.text()[answered:].splitlines() if line.strip()]
    replay_file = tmp_path / "replay" / f"{TEMPLATE_ROOT.name}.json"
    assert status == 1, terminal.text()
    assert after_prompts == [MEMORY_ERROR, retry_hint(replay_file, out), COOKIECUTTER_LAST_LINE]
    assert list(out.iterdir()) == []


def test_command_line_output_is_the_hooks_lines_and_one_line_of_cookiecutters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(user_config(tmp_path)), "-o", str(out), str(TEMPLATE_ROOT), "coiled_worker_memory=16", "coiled_n_workers=0"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: coiled_n_workers: '0' is not a whole number from 1 to 1000",
        MEMORY_ERROR,
    ]
    assert done.stdout.splitlines() == [COOKIECUTTER_LAST_LINE]
    assert list(out.iterdir()) == []


def failing_template(folder: Path) -> Path:
    """Another template whose pre-generation hook fails: its failure is cookiecutter's to report."""
    (folder / "hooks").mkdir(parents=True)
    (folder / "cookiecutter.json").write_text('{"name": "other"}', encoding="utf-8")
    (folder / "{{cookiecutter.name}}").mkdir()
    (folder / "hooks" / "pre_gen_project.py").write_text("raise SystemExit(1)\n", encoding="utf-8")
    return folder


def test_only_this_templates_refusal_leaves_cookiecutters_log(tmp_path: Path, capfd, caplog) -> None:
    """Through the API as cruft uses it: the exception is raised as before, the record is
    dropped for this template, and another template's failing hook is still logged, in the
    same process, after this template's extension is installed."""
    caplog.set_level(logging.ERROR, logger="cookiecutter")
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context={**BASE_ANSWERS, "coiled_n_workers": "0"}, output_dir=str(tmp_path / "out"), config_file=str(user_config(tmp_path)))  # fmt: skip
    assert caplog.records == []
    assert capfd.readouterr().err.splitlines() == ["error: coiled_n_workers: '0' is not a whole number from 1 to 1000"]

    other = failing_template(tmp_path / "other")
    with pytest.raises(FailedHookException):
        cookiecutter(str(other), no_input=True, output_dir=str(tmp_path / "other-out"), config_file=str(user_config(tmp_path)))  # fmt: skip
    assert [record.getMessage() for record in caplog.records] == [
        "Stopping generation because pre_gen_project hook script didn't exit successfully"
    ]
