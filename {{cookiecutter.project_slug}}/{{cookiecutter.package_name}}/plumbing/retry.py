"""Retry policy for tasks that compute on a cluster (why these numbers: docs/design.md, "Retries")."""

from __future__ import annotations

import math
import os
from datetime import timedelta

from ..settings import ENV_PREFIX, RETRY_DELAY_SECONDS, TASK_RETRIES

RETRY_DELAY_VAR = f"{ENV_PREFIX}RETRY_DELAY_SECONDS"
MAX_RETRY_DELAY_SECONDS = 3600  # a longer wait keeps a paid cluster idle for nothing


def cluster_task_retries() -> dict[str, object]:
    """Task keyword arguments for ``max_retries`` and ``retry_delay``."""
    raw = os.environ.get(RETRY_DELAY_VAR, RETRY_DELAY_SECONDS).strip()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_RETRY_DELAY_SECONDS:
        raise ValueError(f"{RETRY_DELAY_VAR}: {raw!r} is not a number of seconds from 0 to {MAX_RETRY_DELAY_SECONDS}")
    return {"max_retries": TASK_RETRIES, "retry_delay": timedelta(seconds=seconds)}
