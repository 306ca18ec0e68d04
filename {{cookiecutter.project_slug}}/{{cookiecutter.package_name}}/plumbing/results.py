"""Kept results: what a flow's costly tasks computed, saved so that a later run restores it instead of paying again.

A flow names the tasks worth keeping (``declare(..., keep=[task])``): those whose compute
costs, such as a summary computed on a cluster or a reduction over thousands of task
runs. Every run writes their results to ``<PREFIX>_RESULTS`` (a folder, or an ``s3://``,
``gs://`` or ``abfs://`` URL), and ``run --resume`` (``<PREFIX>_RESUME=true`` under
``prefect run -p``) restores them instead of computing them: a run that failed after its
summary, or was killed, finishes without starting a cluster again.

A kept result is found by a key made of the flow, the task, the values of the parameters
the task depends on (its upstream ``Parameter`` tasks, through any number of tasks) and a
version of the flow's code (a hash of its module and of the ``flows/`` modules it
imports), so a changed parameter or changed code is never served an old result. What a
path points to is not in the key: after changing input files, run without ``--resume``.

Results are written by the flow's own process, so a local folder works whatever the
cluster. A flow whose tasks run in that process writes each result the moment its task
succeeds (a run killed right after keeps it). A flow whose tasks run on the cluster's
workers (``every_task_on_cluster``) writes them when the run ends, from the states
Prefect gathered back: a worker's disk is not this machine's, and a task's state reaches
this process only then. Writes are whole or not at all (a local file is written under a
temporary name and renamed; an object is stored by one upload); a result that cannot be
read (truncated, corrupt, written by another Python) is computed again after one warning.
Results are pickles: keep them where only you and the code you run can write.

Restoring uses Prefect's own rule that a task given a finished state is not run: a
restored task gets a ``Success`` holding its kept result, and so does every task whose
only consumers are restored or idle themselves ("idle": ``inc-double-add-sum``'s whole
map when its sum is restored). Prefect always runs a resource's setup and cleanup, so
``DaskCluster`` starts no cluster when no task of the run takes its client, and
``ClusterDaskExecutor`` starts its cluster with the first task it is given: a run whose
cluster work is all restored starts no cluster at all.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import secrets
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import prefect
from prefect import Flow, Parameter, Task
from prefect.engine.state import State, Success
from prefect.executors import LocalExecutor
from prefect.tasks.core.resource_manager import ResourceCleanupTask, ResourceInitTask, ResourceSetupTask
from prefect.utilities.logging import get_logger

from .. import flows as flows_package
from ..settings import ENV_PREFIX
from .rules import STORES, SettingError

if TYPE_CHECKING:
    from .contract import FlowDeclaration
    from .plan import RunPlan

FORMAT = b"kept-result 1\n"  # the first line of every kept result; another layout gets another number
SUFFIX = ".kept"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # pickles are read back by the same minor version
KEPT_KEY = "kept_results"  # prefect.context: the run's KeptResults, where its tasks run in the flow's process
UNUSED_KEY = "unused_resources"  # prefect.context: slugs of the resource setups no task of the run uses
RESOURCE_TASKS = (ResourceInitTask, ResourceSetupTask, ResourceCleanupTask)
IDLE = "not run: every task that uses its result was restored"

logger = get_logger("results")


class UnreadableResult(Exception):
    """A kept result that cannot be used; the message says why (it is computed again)."""


# -- what a flow keeps, and the key of each kept result ----------------------------------------------


def checked_keep(flow: Flow, tasks: Task | Iterable[Task]) -> tuple[Task, ...]:
    """The tasks ``declare(keep=...)`` names, or ValueError naming the first one that cannot be kept and why."""
    kept = tuple(dict.fromkeys([tasks] if isinstance(tasks, Task) else tasks))
    for task in kept:
        if not isinstance(task, Task) or task not in flow.tasks:
            raise ValueError(f"keep: {task!r} is not a task of the flow")
        if isinstance(task, (Parameter, *RESOURCE_TASKS)):
            raise ValueError(f"keep: {task.name!r} is a parameter or a resource's own task; keep a task that computes")
        if any(edge.mapped for edge in flow.edges_to(task)):
            raise ValueError(f"keep: {task.name!r} is mapped; keep the task that reduces its results")
    return kept


def keep_results_of(tasks: Iterable[Task]) -> None:
    """Give each task the state handler that keeps its result the moment it succeeds (once, whatever the calls)."""
    for task in tasks:
        if keep_on_success not in task.state_handlers:
            # A new list: a task made by calling a decorated task shares the decorated one's list.
            task.state_handlers = [*task.state_handlers, keep_on_success]


def upstream_parameters(flow: Flow, task: Task) -> list[Parameter]:
    """The parameters ``task`` depends on through the flow's edges, directly or through other tasks, by name."""
    seen: set[Task] = set()
    todo = [task]
    while todo:
        for upstream in flow.upstream_tasks(todo.pop()):
            if upstream not in seen:
                seen.add(upstream)
                todo.append(upstream)
    return sorted((found for found in seen if isinstance(found, Parameter)), key=lambda parameter: parameter.name)


def code_version(source: str) -> str:
    """A hash of the flow module ``source`` and of every module of its folder it imports, directly or not.

    Without a file (a flow declared in a notebook) there is nothing to hash: a fresh value
    each time, so such a result is never restored rather than restored after a change.
    """
    if not source or not Path(source).is_file():
        return f"unversioned-{uuid4().hex}"
    digest = hashlib.sha256()
    for path in flow_modules(Path(source)):
        text = path.read_bytes()
        digest.update(f"{path.name}\0{len(text)}\0".encode())
        digest.update(text)
    return digest.hexdigest()[:16]


def flow_modules(source: Path) -> list[Path]:
    """``source`` and the modules of its folder it imports (absolutely or relatively), following their imports."""
    found, todo = {source}, [source]
    while todo:
        for name in imported_flow_modules(todo.pop().read_text(encoding="utf-8"), flows_package.__name__):
            path = source.parent / f"{name}.py"
            if path.is_file() and path not in found:
                found.add(path)
                todo.append(path)
    return sorted(found)


def imported_flow_modules(text: str, package: str) -> set[str]:
    """The names of the modules of ``package`` (the flows folder) that the code ``text`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {
                alias.name[len(package) + 1 :].split(".")[0]
                for alias in node.names
                if alias.name.startswith(f"{package}.")
            }
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                base = module
            elif node.level == 0 and (module == package or module.startswith(f"{package}.")):
                base = module[len(package) + 1 :]
            else:
                continue
            names |= {base.split(".")[0]} if base else {alias.name for alias in node.names}
    return names


def result_key(flow: str, slug: str, parameters: Mapping[str, Any], version: str) -> str:
    """The key of one kept result. A value JSON cannot write is keyed by its repr: one that
    differs between runs (an object's address) is never restored, which is the safe way to fail."""
    identity = {"flow": flow, "task": slug, "parameters": parameters, "code": version}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=repr).encode()).hexdigest()[:32]


# -- where kept results live -----------------------------------------------------------------------


def check_location(location: str) -> None:
    """SettingError, before anything starts, when the storage library of ``location`` is not installed."""
    import fsspec
    from fsspec.utils import get_protocol

    protocol = get_protocol(location)
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError):
        extra = STORES.get(protocol, protocol)
        raise SettingError(
            f'{ENV_PREFIX}RESULTS: {location!r} needs the {extra} extra: pip install -e ".[{extra}]"'
        ) from None


def folder_name(flow: str) -> str:
    """The flow's folder among kept results: its name in letters, digits, dashes and underscores only."""
    return "".join(char if char.isascii() and (char.isalnum() or char in "-_") else "_" for char in flow) or "_"


@dataclass(frozen=True)
class Entry:
    """One kept result as ``results`` lists it: its header, or why it cannot be read."""

    path: str
    header: Mapping[str, Any] | None
    problem: str = ""


class ResultStore:
    """Kept results at one location, ``<location>/<flow>/<task>-<key>.kept``: a local folder or an object store."""

    def __init__(self, location: str) -> None:
        import fsspec
        from fsspec.utils import get_protocol

        self.location = location
        self.local = get_protocol(location) in ("file", "local")
        self.fs, self.root = fsspec.core.url_to_fs(location)

    def path(self, flow: str, slug: str, key: str) -> str:
        return f"{self.root.rstrip('/')}/{folder_name(flow)}/{slug}-{key}{SUFFIX}"

    def shown(self, path: str) -> str:
        """A path as the user gave the location: a local path, or a URL."""
        return path if self.local else self.fs.unstrip_protocol(path)

    def read(self, path: str, key: str) -> tuple[Mapping[str, Any], Any] | None:
        """The header and value kept at ``path``; None if nothing is; UnreadableResult if it cannot be used."""
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return unpack(data, key)

    def write(self, path: str, data: bytes) -> None:
        """Write whole or not at all: a local file under a temporary name, then renamed; an object in one upload."""
        if self.local:
            write_whole(Path(path), data)
        else:
            self.fs.pipe_file(path, data)

    def entries(self) -> list[Entry]:
        """Every kept result here, each with its header (or why it cannot be read)."""
        try:
            paths = self.fs.find(self.root)
        except FileNotFoundError:
            return []
        return [self.entry(path) for path in sorted(paths) if is_result(path)]

    def entry(self, path: str) -> Entry:
        try:
            with self.fs.open(path, "rb") as handle:
                return Entry(path, read_header(handle.readline(), handle.readline()))
        except Exception as error:  # listing goes on: the entry says what is wrong with it
            return Entry(path, None, str(error) or type(error).__name__)

    def staging_files(self) -> list[str]:
        """Temporary files of local writes that were killed outright before their rename."""
        if not self.local:
            return []
        try:
            paths = self.fs.find(self.root)
        except FileNotFoundError:
            return []
        return [path for path in paths if PurePosixPath(path).name.startswith(".") and f"{SUFFIX}." in path]

    def remove(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.fs.rm_file(path)


def is_result(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(SUFFIX) and not name.startswith(".")


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, replacing what is there: a run killed mid-write
    leaves the old file (or none) and a staging file, never a truncated result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def pack(header: Mapping[str, Any], value: Any) -> bytes:
    """A kept result: the format line, a one-line JSON header (with the payload's size and checksum), the pickle."""
    import cloudpickle

    payload = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    described = {**header, "python": PYTHON, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return FORMAT + json.dumps(described, sort_keys=True, default=repr).encode() + b"\n" + payload


def read_header(first: bytes, line: bytes) -> dict[str, Any]:
    """The header of a kept result from its first two lines; UnreadableResult if they are not one."""
    if first != FORMAT:
        raise UnreadableResult("it is not a kept result of this project's format")
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or not line.endswith(b"\n"):
        raise UnreadableResult("its header is truncated or corrupt")
    return header


def unpack(data: bytes, key: str) -> tuple[Mapping[str, Any], Any]:
    """The header and value of a kept result; UnreadableResult saying why it cannot be used."""
    first, _, rest = data.partition(b"\n")
    line, sep, payload = rest.partition(b"\n")
    header = read_header(first + b"\n", line + sep)
    if header.get("python") != PYTHON:
        raise UnreadableResult(f"it was written by Python {header.get('python')}, and this is Python {PYTHON}")
    if len(payload) != header.get("size") or hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise UnreadableResult("it is truncated or corrupt (its size or checksum does not match its header)")
    if header.get("key") != key:
        raise UnreadableResult("it was kept for another key")
    try:
        return header, pickle.loads(payload)
    except Exception as error:  # a class that moved or changed, a library of another version
        raise UnreadableResult(f"it cannot be unpickled here ({type(error).__name__}: {error})") from None


# -- one run's kept results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where one kept task's result goes in this run, and the header that describes it."""

    name: str
    path: str
    header: Mapping[str, Any]


@dataclass
class KeptResults:
    """The kept tasks of one run: where each result goes, and which are restored or already written."""

    store: ResultStore
    targets: dict[str, Target]  # by task slug
    done: set[str] = field(default_factory=set)  # restored, or written (or tried) in this run

    @classmethod
    def for_run(cls, declaration: FlowDeclaration, plan: RunPlan) -> KeptResults:
        flow, store, version = declaration.flow, ResultStore(plan.results), code_version(declaration.source)
        targets = {}
        for task in declaration.keep:
            slug = flow.slugs[task]
            parameters = {
                parameter.name: plan.parameters.get(parameter.name) for parameter in upstream_parameters(flow, task)
            }
            key = result_key(flow.name, slug, parameters, version)
            header = {
                "flow": flow.name,
                "task": task.name,
                "slug": slug,
                "key": key,
                "code": version,
                "parameters": parameters,
            }
            targets[slug] = Target(task.name, store.path(flow.name, slug, key), header)
        return cls(store, targets)

    def restore(self, flow: Flow) -> dict[Task, State]:
        """A finished state for each kept task whose result is kept and readable; the log says which."""
        states: dict[Task, State] = {}
        for task, slug in flow.slugs.items():
            target = self.targets.get(slug)
            if target is None:
                continue
            where = self.store.shown(target.path)
            try:
                found = self.store.read(target.path, target.header["key"])
            except Exception as error:  # unreadable, or a store that fails: computed, never a crash
                logger.warning(
                    "task %r: the kept result %s cannot be used: %s; computing it again", target.name, where, error
                )
                continue
            if found is None:
                logger.info("task %r: nothing kept for these parameters and this code; computing it", target.name)
                continue
            header, value = found
            logger.info("task %r: restored, not computed (kept %s at %s)", target.name, header.get("written"), where)
            states[task] = Success(message=f"restored from {where}", result=value)
            self.done.add(slug)
        return states

    def keep(self, slug: str, value: Any) -> None:
        """Write the result of the kept task ``slug``, once per run; a failure is a warning, never the run's."""
        target = self.targets.get(slug)
        if target is None or slug in self.done:
            return
        self.done.add(slug)
        where = self.store.shown(target.path)
        written = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        try:
            self.store.write(target.path, pack({**target.header, "written": written}, value))
        except Exception as error:  # the run's own result is not at stake: only a later --resume
            logger.warning(
                "task %r: computed; its result could not be kept at %s (%s: %s)",
                target.name,
                where,
                type(error).__name__,
                error,
            )
            return
        logger.info("task %r: computed; result kept at %s", target.name, where)

    def keep_finished(self, state: State, flow: Flow) -> None:
        """Write what the run computed and has not written yet: every kept result of a flow whose tasks ran on workers."""
        task_states = state.result if isinstance(state.result, dict) else {}
        for task, task_state in task_states.items():
            if keepable(task_state):
                self.keep(flow.slugs[task], task_state.result)


def keepable(state: State | None) -> bool:
    """A finished state with a value to keep: a success, not a skip and not the parent of a map."""
    return state is not None and state.is_successful() and not state.is_skipped() and not state.is_mapped()


def keep_on_success(task: Task, old_state: State, new_state: State) -> State:
    """Task state handler of every kept task: writes its result the moment it succeeds, in the flow's process.

    Only where the run put its ``KeptResults`` in the context: flows whose tasks run in
    the flow's process. On a cluster's workers there is nothing in the context, and the
    flow's process writes the result when the run ends.
    """
    kept = prefect.context.get(KEPT_KEY)
    if kept is not None and keepable(new_state) and prefect.context.get("map_index") is None:
        kept.keep(prefect.context.get("task_slug"), new_state.result)
    return new_state


# -- a run's start: what is restored, what need not run --------------------------------------------


def idle_tasks(flow: Flow, restored: Iterable[Task], wanted: Task) -> set[Task]:
    """Tasks that need not run because every task that uses their result is restored or idle itself.

    A task runs if it is the flow's result (``wanted``), if nothing uses its result (the
    flow's ends), or if a task that runs uses it. A resource's own tasks always run (Prefect
    reruns them whatever their state), and a cleanup is no user of what it closes after.
    """
    restored = set(restored)
    if not restored:
        return set()
    running: set[Task] = set()
    for task in reversed(flow.sorted_tasks()):
        if task in restored:
            continue
        users = [user for user in flow.downstream_tasks(task) if not isinstance(user, ResourceCleanupTask)]
        if isinstance(task, RESOURCE_TASKS) or task is wanted or not users or any(user in running for user in users):
            running.add(task)
    return set(flow.tasks) - restored - running


def unused_resources(flow: Flow, finished: set[Task]) -> frozenset[str]:
    """Slugs of the resource setups (``DaskCluster``) whose value no task that runs takes: they start nothing."""
    return frozenset(
        flow.slugs[setup]
        for setup in flow.tasks
        if isinstance(setup, ResourceSetupTask)
        and not any(
            edge.key is not None
            and edge.downstream_task not in finished
            and not isinstance(edge.downstream_task, RESOURCE_TASKS)
            for edge in flow.edges_from(setup)
        )
    )


@dataclass(frozen=True)
class RunStart:
    """What a run gives Prefect for its kept results: the restored and idle tasks' states and the context's entries."""

    task_states: dict[Task, State]
    context: dict[str, Any]
    kept: KeptResults | None = None

    def keep_finished(self, state: State, flow: Flow) -> None:
        if self.kept is not None:
            self.kept.keep_finished(state, flow)


def start_run(flow: Flow, declaration: FlowDeclaration | None, plan: RunPlan) -> RunStart:
    """Restore what ``plan`` asks to (``--resume``), mark what need not run, and say where results are written."""
    if declaration is None or not declaration.keep or not plan.results:
        return RunStart({}, {})
    kept = KeptResults.for_run(declaration, plan)
    restored = kept.restore(flow) if plan.resume else {}
    idle = idle_tasks(flow, restored, declaration.result)
    kept.done |= {flow.slugs[task] for task in idle}  # a kept task that need not run has nothing to write
    if idle - set(flow.parameters()):
        names = sorted(task.name for task in idle if not isinstance(task, Parameter))
        logger.info("not run, as every task that uses their results was restored: %s", ", ".join(names))
    states: dict[Task, State] = dict(restored)
    states.update((task, Success(message=IDLE, result=None)) for task in idle)
    context: dict[str, Any] = {UNUSED_KEY: unused_resources(flow, set(states))} if states else {}
    if flow.executor is None or isinstance(flow.executor, LocalExecutor):
        context[KEPT_KEY] = kept  # tasks run here: each result is written the moment its task succeeds
    return RunStart(states, context, kept)


# -- the ``results`` command -----------------------------------------------------------------------


def size_text(size: float) -> str:
    """A size in bytes as people read it: 950 B, 4.1 kB, 2.3 MB."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def entry_line(store: ResultStore, entry: Entry, versions: Mapping[str, str]) -> str:
    """One kept result: flow, task, when, size and parameters, and why it would not be restored, if it would not."""
    where = store.shown(entry.path)
    if entry.header is None:
        return f"{where}  unreadable ({entry.problem}): a --resume computes it again"
    header = entry.header
    parameters = " ".join(f"{name}={value}" for name, value in sorted(header.get("parameters", {}).items()))
    note = ""
    if header.get("flow") not in versions:
        note = "  (no such flow in this project)"
    elif header.get("code") != versions[header.get("flow")]:
        note = "  (older code: never restored)"
    size = size_text(header.get("size", 0))
    return f"{header.get('flow')}  {header.get('task')}  {header.get('written')}  {size}  {parameters or '-'}{note}"


def listing(location: str, flows: Mapping[str, FlowDeclaration]) -> str:
    """What ``results`` prints: every kept result at ``location``, one line each."""
    store = ResultStore(location)
    entries = store.entries()
    if not entries:
        return f"no kept results in {location}"
    versions = {name: code_version(declaration.source) for name, declaration in flows.items()}
    lines = [entry_line(store, entry, versions) for entry in entries]
    return "\n".join([f"{len(entries)} kept result{'s' if len(entries) != 1 else ''} in {location}:", *lines])


def clear(location: str, flow: str, flows: Mapping[str, FlowDeclaration]) -> str:
    """Remove the kept results of ``flow`` (every flow's when empty), and the staging files of killed writes."""
    store = ResultStore(location)
    entries = store.entries()
    kept_flows = {entry.header.get("flow") for entry in entries if entry.header is not None}
    if flow and flow not in flows and flow not in kept_flows:
        choices = ", ".join(sorted(set(flows) | kept_flows)) or "(none)"
        raise ValueError(
            f"results --clear: {flow!r} is no flow of this project nor of its kept results; choose one of {choices}"
        )
    chosen = [entry.path for entry in entries if not flow or belongs_to(entry, flow)]
    store.remove(chosen + (store.staging_files() if not flow else []))
    whose = f" of {flow}" if flow else ""
    return f"removed {len(chosen)} kept result{'s' if len(chosen) != 1 else ''}{whose} from {location}"


def belongs_to(entry: Entry, flow: str) -> bool:
    """An entry of ``flow``: by its header, or by its folder when it cannot be read."""
    if entry.header is not None:
        return entry.header.get("flow") == flow
    return PurePosixPath(entry.path).parent.name == folder_name(flow)
