"""Set up the embedded local cluster's workers: Dask imports this module in each (a preload).

That cluster's scheduler lives in the project's own process, so a worker closing with it
is only watching that process end the run, after a signal or at the end of a run. On a
busy machine a heartbeat can still be in flight then ("Failed to communicate with
scheduler during heartbeat", with two tracebacks), and a task the closing cut short is
logged as a cancelled instruction: both would land in the user's terminal after the run
said how it ended. Only those records are dropped: every other worker log line still shows.
"""

from __future__ import annotations

import logging
from typing import Any

HEARTBEAT_LOST = "Failed to communicate with scheduler during heartbeat."
# distributed.worker_state_machine: "This should exclusively happen in Worker.close()".
CLOSED_MID_TASK = ("Async instruction for <Task cancelled", "ended with CancelledError")
LOGGERS = ("distributed.worker", "distributed.worker.state_machine")


class _DropClosingNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cut_short = message.startswith(CLOSED_MID_TASK[0]) and message.endswith(CLOSED_MID_TASK[1])
        return message != HEARTBEAT_LOST and not cut_short


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in every worker as it starts."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropClosingNoise) for existing in logger.filters):
            logger.addFilter(_DropClosingNoise())
