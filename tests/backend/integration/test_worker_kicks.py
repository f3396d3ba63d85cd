"""A request kicks the dispatcher only when it changed something: the console polls the read
endpoints every few seconds, and each kick used to queue a dispatch run on the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.integration.test_api import PUBLIC, STAFF, START, TWILIO_TOKEN, call
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.entrypoints.app import create_app
from waitlist.entrypoints.http import Backend
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork


class CountingWorker:
    """Stands in for the scheduler: counts kicks, runs nothing."""

    def __init__(self) -> None:
        self.kicks = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def stop(self) -> None: ...

    def kick(self) -> None:
        self.kicks += 1


@pytest.fixture
def kicked(clean_db: Engine) -> Iterator[tuple[Sanic, CountingWorker]]:
    Sanic.test_mode = True
    settings = Settings.from_env(
        {
            "STAFF_API_TOKEN": "staff-secret",
            "ACTIONS_API_TOKEN": "actions-secret",
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC,
        }
    )
    worker = CountingWorker()
    backend = Backend(
        settings,
        UnitOfWork.session_factory_for(clean_db),
        RecordingMessenger(),
        FakeClock(START),
        worker,  # type: ignore[arg-type]
    )
    yield create_app(backend, name=f"test_kicks_{id(backend)}"), worker


def test_reads_do_not_kick_the_dispatcher_and_changes_do(
    kicked: tuple[Sanic, CountingWorker],
) -> None:
    app, worker = kicked
    for path in ("/api/v1/board", "/api/v1/providers", "/api/v1/stats", "/api/v1/followups/booked"):
        assert call(app, "get", path, STAFF).status == 200
    assert worker.kicks == 0
    created = call(
        app, "post", "/api/v1/providers", STAFF, json={"name": "Dr. Lee", "provider_type": "derm"}
    )
    assert created.status == 201
    assert worker.kicks == 1
