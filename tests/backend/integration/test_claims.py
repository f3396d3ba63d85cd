"""The heart of the system: one winner per slot, whatever the concurrency. Real threads, real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.backend import builders
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.entrypoints.scheduler import Worker
from waitlist.service_layer import dispatch, offering, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call in its own thread, released at the same instant."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def accepted_rows(engine: Engine, cancellation_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM offers WHERE cancellation_id = :c AND state = 'accepted'"
            ),
            {"c": cancellation_id},
        ).scalar_one()


@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(20))
def test_fifty_concurrent_accepts_have_exactly_one_winner(
    uow_factory: Callable[[], UnitOfWork],
    clean_db: Engine,
    clock: FakeClock,
    messenger: RecordingMessenger,
    repetition: int,
) -> None:
    settings = Settings.from_env({"BATCH_SIZE": "50"})
    uow = uow_factory()
    prov = builders.provider(uow, clock.now())
    patients = builders.waitlisted(uow, clock.now(), settings, 50)
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert len(builders.states(uow, cid)) == 50

    now = clock.now() + timedelta(minutes=1)
    calls = [
        (lambda n=n: replies.accept(uow_factory(), settings, now, builders.PHONES[n], f"SM{n}"))
        for n in range(50)
    ]
    answers = run_together(calls)

    outcomes = Counter(a["outcome"] if isinstance(a, dict) else repr(a) for a in answers)
    assert outcomes == {"claimed": 1, "too_late": 49}
    winner = patients[[a["outcome"] for a in answers].index("claimed")]
    view = staff.get_cancellation(uow, cid)
    assert view["status"] == "filled" and view["filled_by_patient_id"] == winner
    assert accepted_rows(clean_db, cid) == 1
    assert Counter(o["state"] for o in view["offers"]) == {"accepted": 1, "withdrawn": 49}
    with uow:
        listed, _ = uow.waitlist.list(None, 100, 0)
        entries = {e.patient_id: e.status.value for e in listed}
    assert entries[winner] == "fulfilled"
    assert Counter(entries.values()) == {"active": 49, "fulfilled": 1}


def test_database_refuses_a_second_accepted_offer(
    uow: UnitOfWork, clean_db: Engine, clock: FakeClock, settings: Settings
) -> None:
    """Even if application code went wrong, the partial unique index keeps one winner."""
    prov = builders.provider(uow, clock.now())
    builders.waitlisted(uow, clock.now(), settings, 2)
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    with pytest.raises(sa.exc.IntegrityError), clean_db.begin() as conn:
        conn.execute(
            sa.text("UPDATE offers SET state = 'accepted' WHERE cancellation_id = :c"), {"c": cid}
        )
    assert accepted_rows(clean_db, cid) == 0


@pytest.mark.parametrize("repetition", range(10))
def test_claim_racing_the_expiry_sweep(
    uow_factory: Callable[[], UnitOfWork],
    clean_db: Engine,
    clock: FakeClock,
    settings: Settings,
    messenger: RecordingMessenger,
    repetition: int,
) -> None:
    uow = uow_factory()
    prov = builders.provider(uow, clock.now())
    patients = builders.waitlisted(uow, clock.now(), settings, 6)
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    at_expiry = clock.advance(minutes=7)

    answer, sweep_result = run_together(
        [
            lambda: replies.accept(
                uow_factory(), settings, at_expiry, builders.PHONES[0], "SM-late"
            ),
            lambda: offering.sweep(uow_factory(), at_expiry, settings),
        ]
    )

    assert isinstance(answer, dict) and answer["outcome"] == "late_claimed", answer
    assert isinstance(sweep_result, dict), sweep_result
    view = staff.get_cancellation(uow, cid)
    assert view["status"] == "filled" and view["filled_by_patient_id"] == patients[0]
    states = Counter(o["state"] for o in view["offers"])
    assert states["accepted"] == 1 and states["pending"] == 0
    assert accepted_rows(clean_db, cid) == 1


def test_two_sweepers_never_process_a_row_twice(
    uow_factory: Callable[[], UnitOfWork],
    clean_db: Engine,
    clock: FakeClock,
    settings: Settings,
    messenger: RecordingMessenger,
) -> None:
    uow = uow_factory()
    prov = builders.provider(uow, clock.now())
    builders.waitlisted(uow, clock.now(), settings, 90)
    cancellations = [
        builders.cancellation(
            uow, clock.now(), settings, prov, starts_in=timedelta(days=2, hours=n)
        )
        for n in range(10)
    ]
    dispatch.dispatch_due(uow, messenger, clock, settings)
    later = clock.advance(minutes=8)

    results = run_together([lambda: offering.sweep(uow_factory(), later, settings)] * 2)

    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["expired"] for r in results) == 30
    with clean_db.connect() as conn:
        expired_events = conn.execute(
            sa.text(
                "SELECT offer_id, count(*) FROM audit_events WHERE kind = 'offer_expired' GROUP BY offer_id"
            )
        ).all()
    assert len(expired_events) == 30 and all(n == 1 for _, n in expired_events)
    for cid in cancellations:
        states = Counter(builders.states(uow, cid).values())
        assert states == {"expired": 3, "pending": 3}


def test_restart_in_the_middle_of_a_hold(
    database_url: str, clean_db: Engine, clock: FakeClock, messenger: RecordingMessenger
) -> None:
    """Holds live in the database: a fresh process (new engine, new scheduler) expires and refills."""
    settings = Settings.from_env({"SWEEP_SECONDS": "1"})
    from waitlist.adapters import database

    first_engine = database.create_engine(database_url)
    first = UnitOfWork.session_factory_for(first_engine)
    uow = UnitOfWork(first)
    prov = builders.provider(uow, clock.now())
    patients = builders.waitlisted(uow, clock.now(), settings, 5)
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    first_engine.dispose()  # the old process is gone, holds half-way through

    clock.advance(minutes=8)
    second_engine = database.create_engine(database_url)
    second = UnitOfWork.session_factory_for(second_engine)
    worker = Worker(lambda: UnitOfWork(second), messenger, clock, settings, dispatch_seconds=0.5)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = builders.states(UnitOfWork(second), cid)
            if list(states.values()).count("pending") == 2:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
        second_engine.dispose()
    assert builders.states(UnitOfWork(UnitOfWork.session_factory_for(clean_db)), cid) == {
        patients[0]: "expired",
        patients[1]: "expired",
        patients[2]: "expired",
        patients[3]: "pending",
        patients[4]: "pending",
    }
    assert [m.phone for m in messenger.sent[-2:]] == builders.PHONES[3:5]
