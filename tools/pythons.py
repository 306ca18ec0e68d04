"""Find an interpreter for each Python the template supports: PATH first, then pyenv's versions.

A pyenv shim called ``python3.9`` sits on PATH even when pyenv will not run that version,
and Debian's python3.X may lack ``venv``; so each candidate is run once, and kept only if
it reports the right version and can build a virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PROBE = "import ensurepip, sys, venv; print('%d.%d' % sys.version_info[:2])"


def candidates(version: str) -> list[str]:
    """``python3.X`` on PATH, then every pyenv install of 3.X, newest patch release first."""
    found = [path] if (path := shutil.which(f"python{version}")) else []
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installs = versions.glob(f"{version}.*/bin/python{version}")
    found += [str(p) for p in sorted(installs, key=lambda p: _release(p.parents[1].name), reverse=True)]
    return found


def _release(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def find_python(version: str) -> str | None:
    """The first working interpreter for ``version`` (e.g. "3.10"), or None if there is none."""
    for candidate in candidates(version):
        try:
            done = subprocess.run([candidate, "-c", PROBE], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None
