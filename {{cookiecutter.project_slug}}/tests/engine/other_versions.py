"""A Dask preload that makes a scheduler or worker report other versions of the packages that must match,
as one built from another environment would: real processes and RPCs, only the numbers differ.

    dask scheduler --preload tests/engine/other_versions.py
"""

from __future__ import annotations

import functools
from typing import Any

OTHER = {"python": "3.12.7.final.0", "cloudpickle": "2.2.1", "msgpack": "1.0.8"}


def dask_setup(server: Any) -> None:
    original = server.handlers["versions"]

    @functools.wraps(original)
    def versions(*args: Any, **kwargs: Any) -> Any:
        reported = original(*args, **kwargs)
        reported["packages"] = {**reported["packages"], **OTHER}
        return reported

    server.handlers["versions"] = versions
