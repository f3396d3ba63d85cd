"""Makes the project's `actions` and `nlu_components` importable in tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The project root holds the `actions` and `nlu_components` packages.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
