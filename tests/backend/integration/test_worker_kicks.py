"""A request kicks the dispatcher only when it changed something: the console polls the read
endpoints every few seconds, and each kick used to queue a dispatch run on the scheduler."""

from __future__ import annotations

import asyncio

import pytest
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.integration.test_api import STAFF, build_app, call


class CountingWorker:
    """Stands in for the scheduler: counts kicks, runs nothing."""

    def __init__(self) -> None:
        self.kicks = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def stop(self) -> None: ...

    def kick(self) -> None:
        self.kicks += 1


@pytest.fixture
def kicked(clean_db: Engine) -> tuple[Sanic, CountingWorker]:
    worker = CountingWorker()
    return build_app(clean_db, worker), worker  # type: ignore[arg-type]


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
