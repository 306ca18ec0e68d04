"""Retry policy for tasks that compute on a cluster.

Cloud workers come and go (spot reclaims, lost connections); a short delay and two
retries absorb that without hiding real bugs, which fail the same way three times.
"""

from __future__ import annotations

import os
from datetime import timedelta

from {{ cookiecutter.package_name }} import ENV_PREFIX

RETRY_DELAY_VAR = f"{ENV_PREFIX}RETRY_DELAY_SECONDS"


def cluster_task_retries() -> dict[str, object]:
    """Task keyword arguments for ``max_retries`` and ``retry_delay``."""
    raw = os.environ.get(RETRY_DELAY_VAR, "5")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(f"{RETRY_DELAY_VAR}: {raw!r} is not a number of seconds >= 0")
    return {"max_retries": 2, "retry_delay": timedelta(seconds=seconds)}
