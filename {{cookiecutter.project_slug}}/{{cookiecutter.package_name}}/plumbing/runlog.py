"""One line at the end of every flow run: flow, final state, wall time and backend."""

from __future__ import annotations

import time
from typing import Any

from prefect.utilities.logging import get_logger

_started: dict[str, float] = {}
_backends: dict[str, str] = {}


def note_backend(flow_name: str, backend: str) -> None:
    """Remember where the current run of ``flow_name`` computes."""
    _backends[flow_name] = backend


def log_run_summary(flow: Any, old_state: Any, new_state: Any) -> Any:
    """Prefect flow state handler: time the run and log its summary when it finishes."""
    if new_state.is_running():
        _started[flow.name] = time.perf_counter()
    elif new_state.is_finished() and flow.name in _started:
        elapsed = time.perf_counter() - _started.pop(flow.name)
        get_logger("run").info(
            "flow=%s state=%s wall=%.2fs backend=%s",
            flow.name,
            type(new_state).__name__,
            elapsed,
            _backends.pop(flow.name, "none"),
        )
    return new_state
