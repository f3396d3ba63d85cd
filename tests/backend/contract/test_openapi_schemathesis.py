"""The staff API does what /docs/openapi.json says: schemathesis generates requests from the
document (valid ones and broken ones) and runs all its checks on every answer: no server error,
status codes, content types and bodies as documented, valid data accepted, invalid data refused,
no answer without a token, a wrong method refused with Allow.

The backend runs as it does in production, served on a loopback port, against this run's
database; the examples are derandomized (a fixed seed) and bounded, so a run is repeatable and
takes a minute or two.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
import schemathesis
from hypothesis import strategies as st
from sanic import Sanic
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from waitlist.adapters import database
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.entrypoints.app import Backend, create_app
from waitlist.service_layer import stats
from waitlist.service_layer.clock import SystemClock
from waitlist.service_layer.unit_of_work import UnitOfWork

TOKEN = "contract-test-staff-token"

# Every check schemathesis has is on (its default); only the amount of data is set here, and the
# token for the document's `bearer` scheme (left out on purpose by the checks that test it).
CONFIG = f"""
seed = 20261126
[generation]
mode = "all"
max-examples = 25
deterministic = true
[auth.openapi.bearer]
bearer = "{TOKEN}"
"""

# Rules that tie one field (or query parameter) to another or to the clock: no JSON Schema can
# state them, so data the document allows may break them, and the answer is a 422 (400 for a
# query) naming the rule. Only for these answers is the positive-data check left out; every other
# check still runs on them.
CROSS_FIELD_RULES = frozenset(
    {
        "slot_end must be after slot_start",
        "slot_start is in the past",
        "not_after must not be before not_before",
        "latest_time must be after earliest_time",
        "the password must not be the username",
        "from must not be after to",
        f"at most {stats.MAX_DAYS} days at once",
        # one key, two bodies: the idempotency contract between two requests, not one request's
        "this Idempotency-Key came with another body",
    }
)


def _dialable_numbers() -> list[str]:
    """Numbers libphonenumber knows as dialable: its example for each region and kind."""
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    numbers = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and phonenumbers.is_valid_number(example):
                numbers.add(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    return sorted(numbers)


# The document's `format: phone` (a dialable number) is ours: schemathesis draws such numbers
# from libphonenumber's own examples, and in the clinic's country from a block of US numbers.
schemathesis.openapi.format(
    "phone",
    st.one_of(
        st.sampled_from(_dialable_numbers()),
        st.integers(100, 9999).map(lambda n: f"+1202555{n:04d}"),
    ),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(engine: Engine) -> Iterator[str]:
    """The backend on a loopback port, in a thread with its own event loop; its base URL."""
    database.empty_all_tables(engine)
    Sanic.test_mode = True  # other tests build apps in this process too
    settings = Settings.from_env({"STAFF_API_TOKEN": TOKEN, "ACTIONS_API_TOKEN": "unused"})
    backend = Backend(
        settings, UnitOfWork.session_factory_for(engine), RecordingMessenger(), SystemClock()
    )
    app = create_app(backend, name="contract_backend")
    port = _free_port()
    loop = asyncio.new_event_loop()
    server: Any = loop.run_until_complete(
        app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    )
    loop.run_until_complete(server.startup())
    loop.run_until_complete(server.before_start())
    loop.run_until_complete(server.after_start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(server.before_stop())
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.run_until_complete(server.after_stop())
        loop.close()


@pytest.fixture(scope="module")
def staff_api(served: str) -> Any:
    config = SchemathesisConfig.from_str(CONFIG)
    return schemathesis.openapi.from_url(f"{served}/docs/openapi.json", config=config)


# The staff API only: /auth (the console's login, logout and session) and /health and /metrics
# are not in its contract.
schema = schemathesis.pytest.from_fixture("staff_api").include(path_regex=r"^/api/v1/")


@schema.parametrize()
def test_the_staff_api_does_what_its_document_says(case: Any) -> None:
    response = case.call()
    excluded = []
    if response.status_code in (400, 422) and response.json().get("detail") in CROSS_FIELD_RULES:
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
