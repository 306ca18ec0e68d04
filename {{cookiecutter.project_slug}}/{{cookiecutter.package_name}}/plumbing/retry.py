"""Retry policy for tasks that compute on a cluster (why these numbers: docs/design.md, "Retries")."""

from __future__ import annotations

from datetime import timedelta

import prefect

from ..settings import RETRY_DELAY_SECONDS, TASK_RETRIES
from .overrides import exit_on_refusal, read_setting, variable

RETRY_DELAY_VAR = variable("RETRY_DELAY_SECONDS")


def cluster_task_retries() -> dict[str, object]:
    """Task keyword arguments for ``max_retries`` and ``retry_delay``.

    Flow modules call this when they are imported. A refused delay raises SettingError,
    which the command line reports as it is; while ``prefect run -p`` loads a flow file
    it is one line and exit 2 instead of Prefect's traceback.
    """
    if prefect.context.get("loading_flow"):
        with exit_on_refusal():
            seconds = read_setting("RETRY_DELAY_SECONDS", RETRY_DELAY_SECONDS)
    else:
        seconds = read_setting("RETRY_DELAY_SECONDS", RETRY_DELAY_SECONDS)
    return {"max_retries": TASK_RETRIES, "retry_delay": timedelta(seconds=float(seconds))}
