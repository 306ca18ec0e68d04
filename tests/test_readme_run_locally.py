"""The generated README's "Run locally" commands compute locally, whatever the default cluster.

Each command of that section runs as written, in a shell, in a bake whose
``default_cluster`` is coiled. Coiled is made unusable (no token, an empty dask configuration, CI
set), so a command that went to Coiled would stop with exit 2; each run must instead
succeed and log that it computed on the local backend.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bakery import bake, package_of


def run_locally_commands(project: Path) -> list[str]:
    """Every command line of the section's bash blocks, as written."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Run locally\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def no_coiled_env(home: Path, project: Path) -> dict[str, str]:
    (home / "dask").mkdir(parents=True)
    prefix = package_of(project).upper() + "_"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DASK_", prefix))}
    bin_dir = str(Path(sys.executable).parent)
    return {**env, "HOME": str(home), "DASK_CONFIG": str(home / "dask"), "CI": "true", "PYTHONPATH": str(project), "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")])}  # fmt: skip


def test_run_locally_commands_compute_locally_in_a_bake_whose_default_is_coiled(tmp_path: Path) -> None:
    """The stricter bake: a command that forgot ``--cluster local`` would go to Coiled. (With the local
    default every run computes locally anyway, as the other tests' bakes show.)"""
    project = bake(tmp_path / "bake", default_cluster="coiled")
    commands = run_locally_commands(project)
    runs = [command for command in commands if " run " in command]
    assert len(runs) >= 2 and any("prefect run -p" in command for command in runs), commands
    env = no_coiled_env(tmp_path / "home", project)
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\n{output[-3000:]}"
        assert "Traceback" not in output, command
        if command in runs:
            assert re.search(r"flow=\S+ state=Success wall=\S+ backend=local", output), f"{command}\n{output[-3000:]}"
