"""Make the helper modules in this folder, and the maintainer tools in tools/, importable by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tools"))


def pytest_collection_modifyitems(items: list) -> None:
    """The longest tests first (``slow(minutes=N)``, then every ``slow`` one): a long test that a
    worker starts last is the whole run's tail; the others steal the short ones around it."""

    def minutes(item) -> float:  # noqa: ANN001 - a pytest item
        marker = item.get_closest_marker("slow")
        return 0 if marker is None else marker.kwargs.get("minutes", 1)

    items.sort(key=minutes, reverse=True)  # stable: collection order within each rank
