"""One chair, one slot: the same cancellation entered at once from many places opens one slot.
Tested twice, like the claim: in code with threads behind a barrier, and in the database with the
partial unique index as the backstop. Real threads, real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend import builders
from tests.backend.integration.test_api import STAFF, app  # noqa: F401  (the app fixture)
from tests.backend.integration.test_claims import run_together
from waitlist.config import Settings
from waitlist.service_layer import staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork


def slots(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (row.id, row.status)
            for row in conn.execute(sa.text("SELECT id, status FROM cancellations ORDER BY id"))
        ]


@pytest.mark.parametrize("repetition", range(5))
def test_twenty_identical_entries_at_once_open_one_slot(
    uow_factory: Callable[[], UnitOfWork],
    clean_db: Engine,
    clock: FakeClock,
    settings: Settings,
    repetition: int,
) -> None:
    prov = builders.provider(uow_factory(), clock.now())
    builders.waitlisted(uow_factory(), clock.now(), settings, 5)
    start = clock.now() + timedelta(days=2)

    def enter() -> int:
        view = staff.create_cancellation(
            uow_factory(),
            prov,
            "Main",
            start,
            start + timedelta(minutes=30),
            clock.now(),
            settings,
            "front desk",
        )
        return view["id"]

    results = run_together([enter] * 20)

    created = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, staff.SlotTaken)]
    assert len(created) == 1 and len(refused) == 19, Counter(type(r).__name__ for r in results)
    assert {r.details["cancellation_id"] for r in refused} == set(created)
    assert slots(clean_db) == [(created[0], "open")]
    with clean_db.connect() as conn:
        offered = conn.execute(sa.text("SELECT count(DISTINCT patient_id) FROM offers")).scalar()
        audited = conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE kind = 'cancellation_created'")
        ).scalar()
    assert offered == settings.offering.batch_size and audited == 1


def test_database_refuses_a_second_open_slot_for_the_same_chair(
    uow: UnitOfWork, clean_db: Engine, clock: FakeClock, settings: Settings
) -> None:
    """Even if application code went wrong, the partial unique index keeps one slot per chair."""
    prov = builders.provider(uow, clock.now())
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    copy = (
        "INSERT INTO cancellations (provider_id, location, slot_start, slot_end, status, created_at)"
        " SELECT provider_id, location, slot_start, slot_end, 'open', created_at"
        " FROM cancellations WHERE id = :c"
    )
    with pytest.raises(sa.exc.IntegrityError), clean_db.begin() as conn:
        conn.execute(sa.text(copy), {"c": cid})
    assert slots(clean_db) == [(cid, "open")]
    # an aborted slot frees the chair
    with clean_db.begin() as conn:
        conn.execute(
            sa.text("UPDATE cancellations SET status = 'aborted' WHERE id = :c"), {"c": cid}
        )
        conn.execute(sa.text(copy), {"c": cid})
    assert [status for _, status in slots(clean_db)] == ["aborted", "open"]


def test_two_identical_posts_at_once_get_one_slot(app: Sanic, clean_db: Engine) -> None:  # noqa: F811
    provider = app.test_client.post(
        "/api/v1/providers", headers=STAFF, json={"name": "Dr. Lee", "provider_type": "derm"}
    )[1].json["id"]
    body = {
        "provider_id": provider,
        "location": "Main",
        "slot_start": "2026-12-03T10:00:00-05:00",
        "slot_end": "2026-12-03T10:30:00-05:00",
    }

    async def both() -> list[int]:
        client = app.asgi_client
        answers = await asyncio.gather(
            *[client.post("/api/v1/cancellations", headers=STAFF, json=body) for _ in range(2)]
        )
        return sorted(response.status for _, response in answers)

    assert asyncio.run(both()) == [201, 409]
    assert len(slots(clean_db)) == 1
