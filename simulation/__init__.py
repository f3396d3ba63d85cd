"""A discrete-event simulator of the waitlist that drives the real engine.

Every offer, hold, claim and sweep is made by the backend's own service layer, selection SQL and
PostgreSQL, with the clock injected; only the clinic (patients, cancellations) and the patients'
answers are modelled. `python -m simulation --scenario default` (or `make simulate`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# the backend's `waitlist` package lives under backend/, which is not installed as a package
_BACKEND = Path(__file__).resolve().parents[1] / "backend"
if str(_BACKEND) not in sys.path:
    sys.path.insert(0, str(_BACKEND))
