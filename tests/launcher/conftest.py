"""The launcher's tests run in the backend's environment, from the project root."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from launcher import stack as stack_module  # noqa: E402

# Settings that decide the policy; a developer's own environment must not leak into the tests.
POLICY_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_API_BASE_URL",
    "TWILIO_MESSAGING_SERVICE_SID",
    "PUBLIC_BASE_URL",
    "STAFF_API_TOKEN",
    "ACTIONS_API_TOKEN",
    "RASA_API_TOKEN",
    "ACTION_SERVER_TOKEN",
    "BACKEND_HOST",
    "RASA_HOST",
    "ACTIONS_HOST",
    "SIMULATOR_HOST",
    "DATA_DIR",
    "LOG_MAX_BYTES",
    "LOG_BACKUPS",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in POLICY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stack_module, "load_dotenv", lambda path: {})  # no .env of the machine
    yield
