"""The plumbing's own tests: everything here is marked ``engine`` (left out of a plain ``pytest``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder before pytest selects by marker."""
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.engine)
