"""Run one probe in a child process and sample the memory of its whole process tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.probe import RESULT_PREFIX

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY = 0.05  # seconds between memory samples


@dataclass(frozen=True)
class Probed:
    """What one child reported, and the peak resident memory of its process tree."""

    payload: dict[str, Any]
    peak_bytes: int


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass  # a worker that exited between listing and reading
    return total


def _sample_peak(root: psutil.Process, done: threading.Event, peak: list[int]) -> None:
    while not done.wait(SAMPLE_EVERY):
        try:
            peak[0] = max(peak[0], _tree_rss(root))
        except psutil.Error:
            return


def probe(project: Path, package: str, case: str, spec: dict[str, Any], env: dict[str, str] | None = None) -> Probed:
    """Run ``bench.probe`` for ``case`` against the baked ``project``; raise if it fails."""
    child_env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(project), str(TEMPLATE_ROOT)]),
        f"{package.upper()}_CLUSTER": "local",
    }
    command = [sys.executable, "-m", "bench.probe", package, case, json.dumps(spec)]
    with subprocess.Popen(
        command, cwd=TEMPLATE_ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        done, peak = threading.Event(), [0]
        sampler = threading.Thread(target=_sample_peak, args=(psutil.Process(child.pid), done, peak), daemon=True)
        sampler.start()
        try:
            stdout, stderr = child.communicate()
        finally:
            done.set()
            sampler.join()
    results = [line[len(RESULT_PREFIX) :] for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if child.returncode != 0 or not results:
        raise RuntimeError(f"bench probe {case} {spec} failed ({child.returncode}):\n{stderr[-3000:]}")
    return Probed(json.loads(results[-1]), peak[0])
