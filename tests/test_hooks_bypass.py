"""Bad answers stop generation on every path that skips cookiecutter's prompts.

Each bad input runs through real cookiecutter: a replay file, a user config's
``default_context`` and ``extra_context``, with the Python API, and once more through
the command line (``--replay-file``, ``--config-file`` or ``key=value``, in turn). Each
run must fail, print exactly the expected line, and leave the output folder empty.

Cookiecutter checks choice answers itself on two of these paths: it refuses a bad
choice given as ``extra_context`` (its own message, before any hook runs), and it
ignores a bad choice in ``default_context`` with a warning, using the first choice.
Only a replay file hands a bad choice to the hook, which then refuses it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from bakery import CHOICES, TEMPLATE_ROOT
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hookkit import BASE_ANSWERS, error_lines, run_cli, user_config

DURATION_RULE = (
    "is not a duration from 1 minute to 7 days such as '20 minutes', '45m', '2 hours' or '1 day' "
    "(units: s, m, h, d, w or their names)"
)
MEMORY_RULE = "is not a memory size of at least 1 GiB such as '16GiB' or '8 GB' (units: GiB, GB, MiB, MB, TiB, TB)"
SLUG_RULE = "is not allowed; use 1 to 63 lowercase ASCII letters and digits, separated by single dashes or underscores"
PACKAGE_RULE = "is not allowed; use 1 to 40 lowercase ASCII letters, digits and underscores, starting with a letter"
SHADOW = "would shadow the module of the same name; choose a name no import uses"
WORKSPACE_RULE = (
    "is not allowed; leave it empty for Coiled's default or use up to 63 lowercase letters and digits joined by "
    "single dashes or underscores (e.g. my-team)"
)
REGION_RULE = (
    "is not allowed; leave it empty for Coiled's default or use up to 40 lowercase letters and digits joined by "
    "single dashes, starting with a letter (e.g. us-east-1, us-east1, eastus2)"
)
RATIO_RULE = "use 0.5 to 64 GiB per vCPU, the range cloud VMs offer"

# (answers that differ from the defaults, the one line the hook must print)
BAD_INPUTS = [
    ({"executor": "Foo"}, "executor: 'Foo' is not allowed; choose one of both, LocalExecutor, DaskExecutor"),
    ({"executor": "localexecutor"}, "executor: 'localexecutor' is not allowed; choose one of both, LocalExecutor, DaskExecutor"),
    ({"default_cluster": "aws"}, "default_cluster: 'aws' is not allowed; choose one of local, coiled, gateway or a scheduler address such as tcp://host:8786"),
    ({"python_version": "3.12"}, "python_version: '3.12' is not allowed; choose one of 3.11, 3.10, 3.9"),
    ({"coiled_spot_policy": "spot-with-fallback"}, "coiled_spot_policy: 'spot-with-fallback' is not allowed; choose one of spot_with_fallback, on-demand, spot"),
    ({"license": "GPL-3.0"}, "license: 'GPL-3.0' is not allowed; choose one of MIT, BSD-3-Clause, Apache-2.0, none"),
    ({"github_actions": "true"}, "github_actions: 'true' is not allowed; choose one of yes, no"),
    ({"project_name": ""}, "project_name: '' is empty; use one line of at most 200 characters"),
    ({"project_name": "   "}, "project_name: '   ' is empty; use one line of at most 200 characters"),
    ({"project_name": "Two\nlines"}, "project_name: 'Two\\nlines' contains a line break or control character (U+000A); use one line of at most 200 characters"),
    ({"description": "tab\there"}, "description: 'tab\\there' contains a line break or control character (U+0009); use one line of at most 512 characters"),
    ({"description": "x" * 513}, f"description: '{'x' * 57}...' is 513 characters long; use one line of at most 512 characters"),
    ({"author_name": "Bob\u2028Smith"}, "author_name: 'Bob\\u2028Smith' contains a line break or control character (U+2028); use one line of at most 200 characters"),
    ({"author_name": "Bob\x7f"}, "author_name: 'Bob\\x7f' contains a line break or control character (U+007F); use one line of at most 200 characters"),
    ({"project_slug": "My Project"}, f"project_slug: 'My Project' {SLUG_RULE}"),
    ({"project_slug": "pipe--line"}, f"project_slug: 'pipe--line' {SLUG_RULE}"),
    ({"project_slug": "pipe\nline"}, f"project_slug: 'pipe\\nline' {SLUG_RULE}"),
    ({"project_slug": "s" * 64}, f"project_slug: '{'s' * 57}...' {SLUG_RULE}"),
    ({"project_slug": 'a"""b'}, f"project_slug: 'a\"\"\"b' {SLUG_RULE}"),
    ({"project_slug": "../escaped"}, f"project_slug: '../escaped' {SLUG_RULE}"),
    ({"package_name": "my-pkg"}, f"package_name: 'my-pkg' {PACKAGE_RULE}"),
    ({"package_name": "Pipeline"}, f"package_name: 'Pipeline' {PACKAGE_RULE}"),
    ({"package_name": "pipeline_é"}, f"package_name: 'pipeline_é' {PACKAGE_RULE}"),
    ({"package_name": "2fast"}, f"package_name: '2fast' {PACKAGE_RULE}"),
    ({"package_name": "p" * 41}, f"package_name: '{'p' * 41}' {PACKAGE_RULE}"),
    ({"package_name": "class"}, "package_name: 'class' is a Python keyword; choose a name that is not"),
    ({"package_name": "dask"}, f"package_name: 'dask' {SHADOW}"),
    ({"package_name": "prefect"}, f"package_name: 'prefect' {SHADOW}"),
    ({"package_name": "distributed"}, f"package_name: 'distributed' {SHADOW}"),
    ({"package_name": "coiled"}, f"package_name: 'coiled' {SHADOW}"),
    ({"package_name": "pandas"}, f"package_name: 'pandas' {SHADOW}"),
    ({"package_name": "test"}, f"package_name: 'test' {SHADOW}"),
    ({"package_name": "json"}, f"package_name: 'json' {SHADOW}"),
    ({"author_email": "not-an-email"}, "author_email: 'not-an-email' is not an e-mail address such as you@example.com"),
    ({"author_email": "you@localhost"}, "author_email: 'you@localhost' is not an e-mail address such as you@example.com"),
    ({"author_email": 'x"y@example.com'}, "author_email: 'x\"y@example.com' is not an e-mail address such as you@example.com"),
    ({"coiled_workspace": "My Team"}, f"coiled_workspace: 'My Team' {WORKSPACE_RULE}"),
    ({"coiled_workspace": "team-"}, f"coiled_workspace: 'team-' {WORKSPACE_RULE}"),
    ({"coiled_region": "US-EAST-1"}, f"coiled_region: 'US-EAST-1' {REGION_RULE}"),
    ({"coiled_region": "us_east_1"}, f"coiled_region: 'us_east_1' {REGION_RULE}"),
    ({"coiled_n_workers": "0"}, "coiled_n_workers: '0' is not a whole number from 1 to 1000"),
    ({"coiled_n_workers": "1001"}, "coiled_n_workers: '1001' is not a whole number from 1 to 1000"),
    ({"coiled_n_workers": "04"}, "coiled_n_workers: '04' is not a whole number from 1 to 1000"),
    ({"coiled_n_workers": "\u0663"}, "coiled_n_workers: '\u0663' is not a whole number from 1 to 1000"),
    ({"coiled_n_workers": "2.5"}, "coiled_n_workers: '2.5' is not a whole number from 1 to 1000"),
    ({"coiled_worker_cpu": "-4"}, "coiled_worker_cpu: '-4' is not a whole number from 1 to 1024"),
    ({"coiled_worker_memory": "16"}, f"coiled_worker_memory: '16' {MEMORY_RULE}"),
    ({"coiled_worker_memory": "16 GiBs"}, f"coiled_worker_memory: '16 GiBs' {MEMORY_RULE}"),
    ({"coiled_worker_memory": "512MiB"}, f"coiled_worker_memory: '512MiB' {MEMORY_RULE}"),
    ({"coiled_worker_memory": "1GiB"}, f"coiled_worker_memory: '1GiB' is 0.25 GiB per vCPU with coiled_worker_cpu 4; {RATIO_RULE}"),
    ({"coiled_worker_cpu": "64"}, f"coiled_worker_memory: '16GiB' is 0.25 GiB per vCPU with coiled_worker_cpu 64; {RATIO_RULE}"),
    ({"coiled_worker_memory": "1TiB"}, f"coiled_worker_memory: '1TiB' is 256 GiB per vCPU with coiled_worker_cpu 4; {RATIO_RULE}"),
    ({"coiled_idle_timeout": "20 min"}, f"coiled_idle_timeout: '20 min' {DURATION_RULE}"),
    ({"coiled_idle_timeout": "30s"}, f"coiled_idle_timeout: '30s' {DURATION_RULE}"),
    ({"coiled_schedule": "0 6 * * 7"}, "coiled_schedule: '0 6 * * 7' is not a cron schedule: day of week '7' is outside 0-6 or sun-sat; use five fields, minute hour day-of-month month day-of-week, such as '0 6 * * *' or '*/15 8-18 * * mon-fri' (in UTC), or leave it empty for no schedule"),
    ({"coiled_idle_timeout": "8 days"}, f"coiled_idle_timeout: '8 days' {DURATION_RULE}"),
    ({"coiled_idle_timeout": "20"}, f"coiled_idle_timeout: '20' {DURATION_RULE}"),
    ({"coiled_idle_timeout": "1e3s"}, f"coiled_idle_timeout: '1e3s' {DURATION_RULE}"),
]  # fmt: skip
PATHS = ("replay", "config", "extra")


def label(bad: tuple[dict, str]) -> str:
    [(field, value)] = bad[0].items()
    return f"{field}={value!r}"[:40]


def is_choice(answers: dict) -> bool:
    return any(field in CHOICES for field in answers)


def assert_nothing_written(output: Path) -> None:
    assert not output.exists() or list(output.iterdir()) == []
    assert not (output.parent / "escaped").exists()


def replay_file(folder: Path, answers: dict) -> Path:
    path = folder / "answers.json"
    path.write_text(json.dumps({"cookiecutter": {**BASE_ANSWERS, **answers}}), encoding="utf-8")
    return path


def bake_through(path: str, answers: dict, folder: Path) -> None:
    """Run cookiecutter's API on one bypass path; raises what cookiecutter raises."""
    output = str(folder / "out")
    if path == "replay":
        cookiecutter(
            str(TEMPLATE_ROOT),
            replay=str(replay_file(folder, answers)),
            output_dir=output,
            config_file=str(user_config(folder)),
        )
    elif path == "config":
        config = user_config(folder, {**BASE_ANSWERS, **answers})
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, output_dir=output, config_file=str(config))
    else:
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context={**BASE_ANSWERS, **answers}, output_dir=output, config_file=str(user_config(folder)))  # fmt: skip


def run_cli_through(path: str, answers: dict, folder: Path) -> subprocess.CompletedProcess:
    """Run the command line on one bypass path, writing into ``folder / "out"``."""
    output = ("--output-dir", str(folder / "out"))
    if path == "replay":
        replay = ("--replay-file", str(replay_file(folder, answers)))
        return run_cli(*replay, "--config-file", str(user_config(folder)), *output, cwd=folder)
    if path == "config":
        return run_cli(
            "--no-input", "--config-file", str(user_config(folder, {**BASE_ANSWERS, **answers})), *output, cwd=folder
        )
    pairs = [f"{field}={value}" for field, value in {**BASE_ANSWERS, **answers}.items()]
    return run_cli("--no-input", "--config-file", str(user_config(folder)), *output, cwd=folder, pairs=pairs)


def command_line_runs() -> list[tuple[str, tuple[dict, str]]]:
    """Every third bad input, spread over the three paths in turn (the API runs above
    cover every input on every path). A bad choice goes through replay or key=value:
    a config file's bad choice is ignored by cookiecutter."""
    runs = []
    for index, bad in enumerate(BAD_INPUTS[::3]):
        path = PATHS[index % 3]
        runs.append(("replay" if path == "config" and is_choice(bad[0]) else path, bad))
    return runs


def test_table_covers_every_prompt() -> None:
    assert len(BAD_INPUTS) >= 30
    fields = {field for answers, _ in BAD_INPUTS for field in answers}
    assert fields == {field for field in BASE_ANSWERS}


# A bad choice in a config file is ignored by cookiecutter: test_config_file_bad_choice_is_ignored.
API_RUNS = [(bad, path) for bad in BAD_INPUTS for path in PATHS if not (path == "config" and is_choice(bad[0]))]


@pytest.mark.parametrize(("bad", "path"), API_RUNS, ids=[f"{path}-{label(bad)}" for bad, path in API_RUNS])
def test_api_refuses(bad: tuple[dict, str], path: str, tmp_path: Path, capfd) -> None:
    answers, line = bad
    if path == "extra" and is_choice(answers):
        [(field, value)] = answers.items()
        with pytest.raises(
            ValueError, match=f"^{re.escape(value)} provided for choice variable {field}, but the choices are "
        ):
            bake_through(path, answers, tmp_path)
    else:
        with pytest.raises(FailedHookException):
            bake_through(path, answers, tmp_path)
        assert error_lines(capfd.readouterr().err) == [f"error: {line}"]
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize(("path", "bad"), command_line_runs(), ids=[f"{p}-{label(b)}" for p, b in command_line_runs()])
def test_command_line_refuses(path: str, bad: tuple[dict, str], tmp_path: Path) -> None:
    answers, line = bad
    done = run_cli_through(path, answers, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    if path == "extra" and is_choice(answers):
        [(field, value)] = answers.items()
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"ValueError: {value} provided for choice variable {field}, but the choices are ")
    else:
        assert error_lines(done.stderr) == [f"error: {line}"], done.stderr
        assert done.stdout.splitlines() == ["Hook script failed (exit status: 1)"], "no traceback of cookiecutter's"
    assert_nothing_written(tmp_path / "out")


def test_replay_reports_every_problem_in_order(tmp_path: Path, capfd) -> None:
    answers = {"python_version": "2.7", "executor": "Foo", "project_slug": "Bad Slug", "coiled_n_workers": "0"}
    with pytest.raises(FailedHookException):
        bake_through("replay", answers, tmp_path)
    assert error_lines(capfd.readouterr().err) == [
        "error: executor: 'Foo' is not allowed; choose one of both, LocalExecutor, DaskExecutor",
        "error: python_version: '2.7' is not allowed; choose one of 3.11, 3.10, 3.9",
        f"error: project_slug: 'Bad Slug' {SLUG_RULE}",
        "error: coiled_n_workers: '0' is not a whole number from 1 to 1000",
    ]
    assert_nothing_written(tmp_path / "out")


def test_slug_with_a_slash_leaves_only_the_empty_parent_cookiecutter_made(tmp_path: Path, capfd) -> None:
    """Cookiecutter creates out/a/b before the hook runs and removes only out/a/b."""
    with pytest.raises(FailedHookException):
        bake_through("extra", {"project_slug": "a/b"}, tmp_path)
    assert error_lines(capfd.readouterr().err) == [f"error: project_slug: 'a/b' {SLUG_RULE}"]
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")] == ["a"]


def test_config_file_bad_choice_is_ignored(tmp_path: Path) -> None:
    """Cookiecutter's own behaviour, pinned so a change shows up: it warns, drops the bad
    choice and every default_context entry after it, and bakes with the first choice."""
    config = user_config(tmp_path, {"executor": "Foo", "coiled_n_workers": "7"})
    with pytest.warns(UserWarning, match="Invalid default received: Foo provided for choice variable executor"):
        project = Path(
            cookiecutter(str(TEMPLATE_ROOT), no_input=True, output_dir=str(tmp_path), config_file=str(config))
        )
    replayed = json.loads((tmp_path / "replay" / f"{TEMPLATE_ROOT.name}.json").read_text(encoding="utf-8"))
    assert (replayed["cookiecutter"]["executor"], replayed["cookiecutter"]["coiled_n_workers"]) == ("both", "4")
    assert project.is_dir()


@pytest.mark.parametrize("options", [["-f"], ["-f", "-s"], ["-s"]], ids=" ".join)
def test_existing_folder_is_never_touched(options: list[str], tmp_path: Path) -> None:
    existing = tmp_path / "out" / BASE_ANSWERS["project_slug"]
    existing.mkdir(parents=True)
    (existing / "README.md").write_text("my own notes\n", encoding="utf-8")
    done = run_cli(
        "--no-input",
        *options,
        "--config-file",
        str(user_config(tmp_path)),
        "--output-dir",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    if "-f" in options:
        assert error_lines(done.stderr) == [
            f"error: project_slug: 'timeseries-pipeline' is the existing, non-empty folder {str(existing)!r}; "
            "nothing was changed (choose another project_slug or output directory)"
        ]
    else:
        assert "already exists" in done.stdout + done.stderr
    assert [p.name for p in existing.iterdir()] == ["README.md"]
    assert (existing / "README.md").read_text(encoding="utf-8") == "my own notes\n"


def test_existing_empty_folder_is_filled(tmp_path: Path) -> None:
    existing = tmp_path / "out" / BASE_ANSWERS["project_slug"]
    existing.mkdir(parents=True)
    done = run_cli(
        "--no-input",
        "-f",
        "--config-file",
        str(user_config(tmp_path)),
        "--output-dir",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (existing / "pyproject.toml").is_file()
