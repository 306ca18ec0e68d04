"""Set up the embedded local cluster's workers: Dask imports this module in each (a preload).

That cluster's scheduler lives in the project's own process, so a worker that loses it
during a heartbeat is only watching that process close the cluster, after a signal or at
the end of a run. On a busy machine the heartbeat can still be in flight then, and the
worker logs it with two tracebacks in the user's terminal, after the run has ended well.
Only that record is dropped: every other worker log line still shows.
"""

from __future__ import annotations

import logging
from typing import Any

HEARTBEAT_LOST = "Failed to communicate with scheduler during heartbeat."


class _DropLostHeartbeat(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != HEARTBEAT_LOST


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in every worker as it starts."""
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(existing, _DropLostHeartbeat) for existing in logger.filters):
        logger.addFilter(_DropLostHeartbeat())
