"""Make the helper modules in this folder, and the maintainer tools in tools/, importable by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tools"))
