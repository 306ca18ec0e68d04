"""Kept results and ``run --resume`` (docs/resume.md), for every flow that declares ``keep=``.

Each flow that keeps results is run for real, on the embedded cluster, with its results
in the folder the suite's conftest gives each test (or in a bucket of a real
S3-compatible server on loopback): killed outright right after a result is kept,
resumed with a changed parameter, with changed code, with a corrupt result, two resumed
at once, and under ``prefect run -p``. A resumed run whose cluster work is all restored
must start no cluster: ``starts_a_cluster`` says, from the flow's graph alone, when one
is still needed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect import Parameter
from prefect.cli import cli as prefect_cli
from prefect.executors import DaskExecutor
from prefect.tasks.core.resource_manager import ResourceCleanupTask, ResourceInitTask, ResourceSetupTask

from {{ cookiecutter.package_name }}.plumbing import FlowContractError, cluster_flow, declare
from {{ cookiecutter.package_name }}.plumbing.cli import main
from {{ cookiecutter.package_name }}.plumbing.contract import FlowDeclaration
from {{ cookiecutter.package_name }}.plumbing.plan import plan_run
from {{ cookiecutter.package_name }}.plumbing.results import IDLE, PYTHON, ResultStore, code_version
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from flowkit import FLOWS, PACKAGE, PROJECT_ROOT, WAIT_SECONDS, moto_s3, project_env, run_held_and_signalled, smoke_args

RESULTS = f"{ENV_PREFIX}RESULTS"
KEEPING = [name for name, declaration in FLOWS.items() if declaration.keep]
CLUSTER_UP = "dashboard="  # the session's line once a cluster is up
RESOURCE_TASKS = (ResourceInitTask, ResourceSetupTask, ResourceCleanupTask)


def store() -> ResultStore:
    return ResultStore(os.environ[RESULTS])


def restored(task_name: str) -> str:
    return f"task {task_name!r}: restored, not computed"


def computed(task_name: str) -> str:
    return f"task {task_name!r}: computed; result kept at"


def cli(args: list[str], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> tuple[int, str, str]:
    """Run the command line in this process: its exit status, what it printed, and its log and error lines."""
    caplog.clear()
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, caplog.text + captured.err


def starts_a_cluster(declaration: FlowDeclaration, restored_tasks: set) -> bool:
    """Whether a run with ``restored_tasks`` restored still needs a cluster, from the flow's graph.

    What runs: the flow's result, the tasks nothing uses (its ends) and whatever a task
    that runs uses. Every such task computes on the cluster when every task does; else
    only those that take a ``DaskCluster``'s client do.
    """
    flow = declaration.flow
    runs: set = set()
    for task in reversed(flow.sorted_tasks()):
        users = flow.downstream_tasks(task)
        if task not in restored_tasks and (task is declaration.result or not users or users & runs):
            runs.add(task)
    if isinstance(flow.executor, DaskExecutor):
        return bool(runs)
    return any(
        edge.key is not None and isinstance(edge.upstream_task, ResourceSetupTask)
        for task in runs
        if not isinstance(task, RESOURCE_TASKS)
        for edge in flow.edges_to(task)
    )


def plain_then_resumed(
    name: str, args: list[str], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> tuple[str, str]:
    """A plain run that keeps the flow's results, then a resumed one that restores them all: their outputs."""
    status, first, log = cli(["run", name, *args], capsys, caplog)
    assert status == 0 and all(computed(task.name) in log for task in FLOWS[name].keep), log
    status, again, log = cli(["run", name, *args, "--resume"], capsys, caplog)
    assert status == 0 and all(restored(task.name) in log for task in FLOWS[name].keep), log
    return first, again


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="prefect")
    return caplog


@pytest.mark.parametrize("name", KEEPING)
def test_a_resumed_run_restores_every_kept_result_and_starts_no_cluster_it_does_not_need(
    name: str, tmp_path: Path, capsys, logs
) -> None:
    args = smoke_args(FLOWS[name], tmp_path)
    first, again = plain_then_resumed(name, args, capsys, logs)
    assert again == first
    assert (CLUSTER_UP in logs.text) == starts_a_cluster(FLOWS[name], set(FLOWS[name].keep)), logs.text
    assert not any(f"task {task.name!r}: computed" in logs.text for task in FLOWS[name].keep)
    listed = main(["results"]) == 0 and capsys.readouterr().out
    assert listed and all(f"{name}  {task.name}  " in listed for task in FLOWS[name].keep), listed


@pytest.mark.parametrize("name", KEEPING)
def test_a_run_killed_right_after_keeping_a_result_resumes_from_it(name: str, tmp_path: Path, capsys, logs) -> None:
    """``kill -9`` the moment the first result is written whole: what it kept is restored, not computed again."""
    args = smoke_args(FLOWS[name], tmp_path)
    command = [sys.executable, str(PROJECT_ROOT / "tests" / "held_open.py"), "-m", PACKAGE, "run", name, *args]
    status, output = run_held_and_signalled(command, signal.SIGKILL, project_env(HELD_OPEN_AT="kept"))
    assert status == -signal.SIGKILL and output.count("held-open: kept") == 1, output
    [entry] = store().entries()
    kept_task = entry.header["task"]

    status, out, log = cli(["run", name, *args, "--resume"], capsys, logs)

    assert status == 0 and out.startswith(f"{name}: Success\n"), log
    assert restored(kept_task) in log and computed(kept_task) not in log, log
    flow = FLOWS[name].flow
    [task] = [task for task in FLOWS[name].keep if task.name == kept_task]
    assert (CLUSTER_UP in log) == starts_a_cluster(FLOWS[name], {task}), log
    status, plain, _ = cli(["run", name, *args], capsys, logs)
    assert status == 0 and plain == out, "the restored result differs from a computed one"
    assert flow.slugs[task] in entry.path


def changeable_parameter(declaration: FlowDeclaration) -> tuple[str, int] | None:
    """A whole-number parameter that a kept task depends on, with another value the flow accepts."""
    flow, smoke = declaration.flow, declaration.smoke_parameters(Path("unused"))
    upstream: set = set()
    for task in declaration.keep:
        todo = [task]
        while todo:
            found = flow.upstream_tasks(todo.pop()) - upstream
            upstream |= found
            todo.extend(found)
    for parameter in sorted((task for task in upstream if isinstance(task, Parameter)), key=lambda task: task.name):
        value = {**declaration.defaults, **smoke}[parameter.name]
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                declaration.checked({**smoke, parameter.name: value + 1})
            except ValueError:
                continue
            return parameter.name, value + 1
    return None


@pytest.mark.parametrize("name", KEEPING)
def test_a_changed_parameter_is_computed_again_and_both_stay_kept(name: str, tmp_path: Path, capsys, logs) -> None:
    if callable(FLOWS[name].smoke):
        pytest.skip("its smoke parameters are made in a folder: the test changes a fixed one")
    changed = changeable_parameter(FLOWS[name])
    if changed is None:
        pytest.skip("no whole-number parameter of a kept task to change")
    args = smoke_args(FLOWS[name], tmp_path)
    plain_then_resumed(name, args, capsys, logs)
    other = [*args, "--param", f"{changed[0]}={changed[1]}"]

    status, _, log = cli(["run", name, *other, "--resume"], capsys, logs)

    assert status == 0 and all(computed(task.name) in log for task in FLOWS[name].keep), log
    assert len(store().entries()) == 2 * len(FLOWS[name].keep)
    status, _, log = cli(["run", name, *args, "--resume"], capsys, logs)
    assert status == 0 and all(restored(task.name) in log for task in FLOWS[name].keep), log


@pytest.mark.parametrize("name", KEEPING)
def test_changed_code_is_computed_again(name: str, tmp_path: Path, capsys, logs) -> None:
    """A copy of the package has the same code version (the key is the code, not where it lives);
    with one comment added to the flow's module, a resumed run of the copy computes everything again."""
    args = smoke_args(FLOWS[name], tmp_path / "data")
    status, first, _ = cli(["run", name, *args], capsys, logs)
    assert status == 0
    package = PROJECT_ROOT / PACKAGE
    copy = tmp_path / "copy"
    shutil.copytree(package, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    module = copy / PACKAGE / Path(FLOWS[name].source).relative_to(package)
    assert code_version(str(module)) == code_version(FLOWS[name].source)
    module.write_text(module.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    assert code_version(str(module)) != code_version(FLOWS[name].source)
    command = [sys.executable, "-m", PACKAGE, "run", name, *args, "--resume"]
    env = {**project_env(), "PYTHONPATH": str(copy)}

    edited = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=WAIT_SECONDS)

    output = edited.stdout + edited.stderr  # Prefect logs to stdout
    assert edited.returncode == 0, output
    assert all(computed(task.name) in output for task in FLOWS[name].keep), output
    assert edited.stdout.endswith(first), "the copy's result differs"
    status, _, log = cli(["run", name, *args, "--resume"], capsys, logs)
    assert status == 0 and all(restored(task.name) in log for task in FLOWS[name].keep), log


def test_the_code_version_covers_the_flows_modules_a_flow_imports_and_no_other(tmp_path: Path) -> None:
    package = PACKAGE + ".flows"
    modules = {
        "main.py": f"from {package}.helper import x\nfrom . import sibling\nimport {package}.deep as d\n",
        "helper.py": "from .nested import y\n",
        "nested.py": "y = 1\n",
        "sibling.py": "",
        "deep.py": "",
        "unrelated.py": "",
    }
    for name, text in modules.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    source = str(tmp_path / "main.py")
    before = code_version(source)
    for name in modules:
        (tmp_path / name).write_text(modules[name] + "# changed\n", encoding="utf-8")
        assert (code_version(source) != before) == (name != "unrelated.py"), name
        (tmp_path / name).write_text(modules[name], encoding="utf-8")
    assert code_version(source) == before


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flipped(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def from_another_python(data: bytes) -> bytes:
    return data.replace(f'"python": "{PYTHON}"'.encode(), b'"python": "3.0"', 1)


@pytest.mark.parametrize("name", KEEPING)
def test_a_corrupt_kept_result_is_computed_again_after_one_warning(name: str, tmp_path: Path, capsys, logs) -> None:
    args = smoke_args(FLOWS[name], tmp_path)
    first, _ = plain_then_resumed(name, args, capsys, logs)
    paths = [Path(entry.path) for entry in store().entries()]
    for damage, reason in [
        (truncated, "truncated or corrupt"),
        (flipped, "checksum does not match"),
        (from_another_python, "written by Python 3.0"),
    ]:
        for path in paths:
            path.write_bytes(damage(path.read_bytes()))

        status, out, log = cli(["run", name, *args, "--resume"], capsys, logs)

        warnings = [
            record.getMessage()
            for record in logs.records
            if record.levelno >= logging.WARNING and record.name.startswith("prefect")
        ]
        assert status == 0 and out == first, log
        assert len(warnings) == len(paths) and all(reason in warning for warning in warnings), warnings
        assert all(computed(task.name) in log for task in FLOWS[name].keep), log
    status, _, log = cli(["run", name, *args, "--resume"], capsys, logs)
    assert status == 0 and all(restored(task.name) in log for task in FLOWS[name].keep), log


@pytest.mark.parametrize("name", KEEPING)
def test_two_resumed_runs_at_once_both_compute_keep_and_leave_whole_results(
    name: str, tmp_path: Path, capsys, logs
) -> None:
    args = smoke_args(FLOWS[name], tmp_path)
    command = [sys.executable, "-m", PACKAGE, "run", name, *args, "--resume"]
    runs = [
        subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    try:
        outputs = [run.communicate(timeout=WAIT_SECONDS)[0] for run in runs]  # Prefect logs to stdout
    finally:
        for run in runs:
            run.kill()
            run.wait()
    assert [run.returncode for run in runs] == [0, 0], outputs
    results = [output[output.index(f"{name}: Success\n") :] for output in outputs]
    assert results[0] == results[1]
    # Both look before either has kept anything, unless one starts seconds late on a busy machine.
    for task in FLOWS[name].keep:
        assert all(computed(task.name) in output or restored(task.name) in output for output in outputs), outputs
        assert any(computed(task.name) in output for output in outputs), outputs
    status, out, log = cli(["run", name, *args, "--resume"], capsys, logs)
    assert status == 0 and out == results[0] and all(restored(task.name) in log for task in FLOWS[name].keep), log
    leftovers = sorted(path.name for path in Path(os.environ[RESULTS]).rglob("*") if path.is_file())
    assert len(leftovers) == len(FLOWS[name].keep) and all(path.endswith(".kept") for path in leftovers), leftovers


@pytest.mark.parametrize("name", KEEPING)
def test_prefect_run_resumes_when_the_environment_says_so(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, logs
) -> None:
    """``prefect run -p`` has no ``--resume``: ``<PREFIX>_RESUME=true`` does the same (invoked in this process)."""
    declaration = FLOWS[name]
    args = smoke_args(declaration, tmp_path)
    assert main(["run", name, *args]) == 0
    monkeypatch.setenv(f"{ENV_PREFIX}RESUME", "true")
    logs.clear()

    done = CliRunner().invoke(prefect_cli, ["run", "-p", declaration.source, *args])

    assert done.exit_code == 0 and "Flow run succeeded" in done.output, done.output
    assert all(restored(task.name) in logs.text for task in declaration.keep), logs.text
    assert (CLUSTER_UP in logs.text) == starts_a_cluster(declaration, set(declaration.keep)), logs.text


needs_s3 = pytest.mark.skipif(
    find_spec("s3fs") is None or find_spec("moto") is None,
    reason='needs the s3 and s3-test extras: pip install -e ".[dev,s3,s3-test]"',
)


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A bucket on a real S3-compatible server on loopback, reached through the standard AWS settings."""
    import s3fs

    with moto_s3(tmp_path / "moto.log") as endpoint:
        for name, value in {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("kept")
        try:
            yield "s3://kept"
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


@needs_s3
@pytest.mark.skipif("timeseries" not in FLOWS, reason="the timeseries example is not in this project")
@pytest.mark.parametrize("where", ["folder", "bucket"])
def test_timeseries_failed_after_its_summary_resumes_without_a_cluster_and_writes_the_right_output(
    where: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, logs
) -> None:
    """The output cannot be written (its bucket does not exist): the run fails after the summary was kept;
    resumed with a good output, the summary is restored, no cluster starts, and the file holds it."""
    import pandas as pd
    import s3fs

    if where == "bucket":
        monkeypatch.setenv(RESULTS, f"{bucket}/results")
    args = smoke_args(FLOWS["timeseries"], tmp_path)

    status, _, log = cli(["run", "timeseries", *args, "--param", "output=s3://missing/summary.csv"], capsys, logs)

    assert status == 1 and "timeseries: Failed: task 'save_summary' failed" in log, log
    where_kept = f"{bucket}/results/" if where == "bucket" else os.environ[RESULTS]
    assert f"{computed('summarize')} {where_kept}" in log, log
    output = f"{bucket}/summary.csv"
    status, out, log = cli(["run", "timeseries", *args, "--param", f"output={output}", "--resume"], capsys, logs)
    assert status == 0 and restored("summarize") in log, log
    assert CLUSTER_UP not in log and "cluster backend=" not in log, log
    status, plain, _ = cli(["run", "timeseries", *args], capsys, logs)
    assert status == 0 and out == plain
    with s3fs.S3FileSystem().open(output, "rb") as written:
        summary = pd.read_csv(written, index_col="name")
    assert summary.round(6).to_string() == "\n".join(plain.splitlines()[1:])
    if where == "bucket":
        assert main(["results"]) == 0
        listed = capsys.readouterr().out
        assert listed.startswith(f"1 kept result in {bucket}/results:\ntimeseries  summarize  "), listed
        assert main(["results", "--clear", "timeseries"]) == 0 and store().entries() == []


def test_a_relative_results_folder_is_the_projects_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Runs keep under the project folder, as the history does; ``results`` started elsewhere lists
    them there (it looked in the folder it was started from)."""
    if not KEEPING:
        pytest.skip("no flow keeps results")
    relative = f".results-{tmp_path.name}"
    folder = PROJECT_ROOT / relative
    monkeypatch.setenv(RESULTS, relative)
    monkeypatch.chdir(tmp_path)
    try:
        name = KEEPING[0]
        assert main(["run", name, *smoke_args(FLOWS[name], tmp_path / name)]) == 0
        assert folder.is_dir() and not (tmp_path / relative).exists()
        capsys.readouterr()
        assert main(["results"]) == 0
        kept = len(FLOWS[name].keep)
        assert capsys.readouterr().out.startswith(f"{kept} kept result{'s' if kept > 1 else ''} in {folder}:\n")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_results_command_lists_and_clears_per_flow_and_refuses_bad_input(tmp_path: Path, capsys, logs) -> None:
    if not KEEPING:
        pytest.skip("no flow keeps results")
    for name in KEEPING:
        assert main(["run", name, *smoke_args(FLOWS[name], tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["results"]) == 0
    listed = capsys.readouterr().out.splitlines()
    kept = sum(len(FLOWS[name].keep) for name in KEEPING)
    assert (
        listed[0] == f"{kept} kept result{'s' if kept > 1 else ''} in {os.environ[RESULTS]}:"
        and len(listed) == kept + 1
    )
    assert main(["results", "--clear", "no-such-flow"]) == 2
    assert capsys.readouterr().err.startswith("error: results --clear: 'no-such-flow' is no flow of this project")
    assert main(["results", "--clear", KEEPING[0]]) == 0
    assert capsys.readouterr().out == (
        f"removed {len(FLOWS[KEEPING[0]].keep)} kept result{'s' if len(FLOWS[KEEPING[0]].keep) > 1 else ''} "
        f"of {KEEPING[0]} from {os.environ[RESULTS]}\n"
    )
    assert len(store().entries()) == kept - len(FLOWS[KEEPING[0]].keep)
    assert main(["results", "--clear"]) == 0 and store().entries() == []
    assert main(["results"]) == 0 and capsys.readouterr().out.endswith(f"no kept results in {os.environ[RESULTS]}\n")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not allowed; give a folder such as .results, or a URL such as s3://bucket/results"),
        ("http://example.com/results", "'http://example.com/results' is not allowed; give a folder"),
        ("s3://", "'s3://' is not allowed; give a folder"),
    ],
)
def test_a_bad_results_location_stops_a_run_in_one_line_before_any_cluster(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    if not KEEPING:
        pytest.skip("no flow keeps results")
    monkeypatch.setenv(RESULTS, value)
    assert main(["run", KEEPING[0], *smoke_args(FLOWS[KEEPING[0]], tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {RESULTS}: {message}" + captured.err.split(message, 1)[1]
    assert captured.err.count("\n") == 1 and CLUSTER_UP not in captured.out + captured.err


def test_keep_names_tasks_that_compute_and_resume_needs_a_flow_that_keeps() -> None:
    from prefect import task

    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def total(values: list, scale: int) -> int:
        return scale * sum(values)

    with cluster_flow("keeps") as flow:
        n = Parameter("n", default=2)
        doubled = double.map([1, 2])
        result = total(doubled, n)
    for keep, reason in [
        ([n], "is a parameter or a resource's own task"),
        ([doubled], "is mapped; keep the task that reduces its results"),
        ([double], "is not a task of the flow"),
    ]:
        with pytest.raises(FlowContractError, match=r"^flow 'keeps': keep: "):
            declare(flow, description="d", result=result, smoke={}, keep=keep)
        with pytest.raises(FlowContractError, match=reason):
            declare(flow, description="d", result=result, smoke={}, keep=keep)
    declaration = declare(flow, description="d", result=result, smoke={})
    with pytest.raises(ValueError, match=r"^--resume: keeps keeps no results; name its costly tasks with declare"):
        plan_run(declaration, {}, resume=True)
    assert declare(flow, description="d", result=result, smoke={}, keep=result).keep == (result,)


def test_a_kept_task_that_need_not_run_is_not_run_and_writes_nothing() -> None:
    """Two kept tasks in a row: with the second restored, the first is needless, whether or not it is kept."""
    from prefect import task

    @task
    def first(n: int) -> int:
        return n + 1

    @task
    def second(x: int) -> int:
        return 2 * x

    with cluster_flow("chain") as flow:
        one = first(Parameter("n", default=1))
        two = second(one)
    declaration = declare(flow, description="d", result=two, smoke={}, keep=[one, two])
    assert flow.run(plan=plan_run(declaration, {})).result[two].result == 4
    [kept_first] = [entry for entry in store().entries() if entry.header["task"] == "first"]
    Path(kept_first.path).unlink()

    state = flow.run(plan=plan_run(declaration, {}, resume=True))

    assert state.result[two].result == 4 and state.result[one].message == IDLE
    assert [entry.header["task"] for entry in store().entries()] == ["second"]
