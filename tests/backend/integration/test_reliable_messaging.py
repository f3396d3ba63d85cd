"""Texts under failing parts: transient vs permanent send errors, the circuit breaker, delivery
reports matched to the exact message, contact hours at send time, unsent offers, no lock held across a
send, and wrong numbers. Real PostgreSQL; the messenger stands in for Rasa and Twilio."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.backend import builders
from tests.backend.integration.test_claims import run_together
from waitlist.adapters.messenger import OutboundMessage, RecordingMessenger, SendError
from waitlist.config import Settings
from waitlist.service_layer import dispatch, offering, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

TWILIO_500 = SendError("Twilio did not take the text (HTTP 500)", permanent=False)


def slot(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, patients: int = 6
) -> tuple[int, list[int]]:
    prov = builders.provider(uow, clock.now())
    ids = builders.waitlisted(uow, clock.now(), settings, patients)
    return builders.cancellation(uow, clock.now(), settings, prov), ids


def retry_for(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger, s: int
) -> None:
    """Let `s` seconds pass, with the scheduler's sweep and dispatch every 5 seconds."""
    for _ in range(s // 5):
        clock.advance(seconds=5)
        offering.sweep(uow, clock.now(), settings)
        dispatch.dispatch_due(uow, messenger, clock, settings)


# --- 3. a Twilio outage never costs a patient their place -------------------------------------


def test_a_twilio_outage_fails_nobody_and_the_top_patients_are_texted_when_it_ends(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.outage = TWILIO_500
    cid, ids = slot(uow, clock, settings, patients=19)
    retry_for(uow, clock, settings, messenger, 90)
    assert builders.states(uow, cid) == {ids[0]: "pending", ids[1]: "pending", ids[2]: "pending"}
    assert staff.messaging_health(uow)["paused"] is True

    messenger.outage = None
    retry_for(uow, clock, settings, messenger, 60)
    assert sorted(m.phone for m in messenger.sent) == builders.PHONES[:3]
    assert builders.states(uow, cid) == {ids[0]: "pending", ids[1]: "pending", ids[2]: "pending"}
    assert staff.messaging_health(uow)["paused"] is False
    offers = builders.offers_of(uow, cid)
    assert all(o["sent_at"] is not None for o in offers)


def test_while_texts_cannot_leave_no_new_patient_is_offered(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.outage = TWILIO_500
    cid, ids = slot(uow, clock, settings)
    retry_for(uow, clock, settings, messenger, 60)
    prov2 = builders.provider(uow, clock.now(), name="Dr. Two")
    second = builders.cancellation(uow, clock.now(), settings, prov2)
    assert builders.states(uow, second) == {}  # paused: nobody is offered into the outage
    assert len(builders.states(uow, cid)) == 3


def test_offers_that_cannot_leave_in_time_are_released_without_penalty_and_offered_again(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.outage = TWILIO_500
    cid, ids = slot(uow, clock, settings)
    retry_for(uow, clock, settings, messenger, 11 * 60)
    offers = builders.offers_of(uow, cid)
    assert Counter(o["state"] for o in offers if o["state"] != "pending") == {"released": 3}
    # the breaker lets a probe through once failures stop: the same patients, never others
    assert {o["patient_id"] for o in offers} == set(ids[:3])
    messenger.outage = None
    retry_for(uow, clock, settings, messenger, 60)
    offers = builders.offers_of(uow, cid)
    pending = {o["patient_id"] for o in offers if o["state"] == "pending"}
    assert pending == set(ids[:3])  # the same top three: nobody lost their place
    assert sorted(m.phone for m in messenger.sent) == builders.PHONES[:3]


def test_a_per_number_error_fails_only_that_offer_and_costs_no_cap(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.failures[builders.PHONES[0]] = SendError("21211", permanent=True, code="21211")
    cid, ids = slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    states = builders.states(uow, cid)
    assert states[ids[0]] == "failed" and states[ids[3]] == "pending"
    assert staff.messaging_health(uow)["consecutive_failures"] == 0
    with uow:
        sent = uow.session.execute(
            sa.text("SELECT count(*) FROM offers WHERE patient_id = :p AND sent_at IS NOT NULL"),
            {"p": ids[0]},
        ).scalar_one()
    assert sent == 0  # caps count texts that left


# --- 4. delivery reports are matched to the exact message -------------------------------------


def test_a_report_about_a_notice_leaves_the_pending_offer_alone(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    first, ids = slot(uow, clock, settings, patients=4)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    replies.accept(uow, settings, clock.now(), builders.PHONES[0], "SM-yes")
    dispatch.dispatch_due(uow, messenger, clock, settings)
    notice = next(m for m in messenger.sent if m.kind == "slot_filled")
    # the patient who got the notice now holds an offer for another slot
    prov2 = builders.provider(uow, clock.now(), name="Dr. Two")
    second = builders.cancellation(uow, clock.now(), settings, prov2)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    holder = ids[builders.PHONES.index(notice.phone)]
    assert builders.states(uow, second)[holder] == "pending"
    result = dispatch.record_delivery_status(
        uow, settings, clock.now(), notice.ref, "SMnotice", "undelivered", "30003"
    )
    assert result == "recorded"
    assert builders.states(uow, second)[holder] == "pending"


def test_a_replayed_or_late_report_changes_nothing(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    ref = messenger.to(builders.PHONES[0])[0].ref
    record = dispatch.record_delivery_status
    assert record(uow, settings, clock.now(), ref, "SM1", "delivered", None) == "recorded"
    # Twilio delivers callbacks out of order and more than once
    assert record(uow, settings, clock.now(), ref, "SM1", "sent", None) == "stale or repeated report"
    assert record(uow, settings, clock.now(), ref, "SM1", "delivered", None) == (
        "stale or repeated report"
    )
    assert builders.states(uow, cid)[ids[0]] == "pending"
    other = messenger.to(builders.PHONES[1])[0].ref
    assert record(uow, settings, clock.now(), other, "SM2", "undelivered", "30003") == "offer failed"
    assert record(uow, settings, clock.now(), other, "SM2", "undelivered", "30003") == (
        "stale or repeated report"
    )
    states = builders.states(uow, cid)
    assert states[ids[1]] == "failed"
    assert Counter(states.values()) == {"pending": 3, "failed": 1}  # one refill, not two


def test_a_report_with_no_ref_of_ours_changes_nothing(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    result = dispatch.record_delivery_status(
        uow, settings, clock.now(), None, "SMreply", "undelivered", "30003"
    )
    assert result == "not an outbox message"
    assert set(builders.states(uow, cid).values()) == {"pending"}


# --- 5. contact hours at send time; unsent offers do not wait forever ---------------------------


def test_a_backlog_never_goes_out_at_night(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    clock.set(datetime(2026, 12, 1, 0, 55, tzinfo=UTC))  # 19:55 in New York
    messenger.outage = SendError("Rasa unreachable: ConnectError", permanent=False)
    cid, ids = slot(uow, clock, settings)
    retry_for(uow, clock, settings, messenger, 20 * 60)  # Rasa comes back at 20:15
    messenger.outage = None
    retry_for(uow, clock, settings, messenger, 60)
    assert messenger.sent == []
    assert {o["state"] for o in builders.offers_of(uow, cid)} == {"released"}
    clock.set(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))  # 08:00
    retry_for(uow, clock, settings, messenger, 10)
    assert sorted(m.phone for m in messenger.sent) == builders.PHONES[:3]
    local_hours = {clock.now().astimezone(settings.clinic_timezone).hour}
    assert local_hours == {8}


# --- 6. only an offer whose text left can be claimed -----------------------------------------


def test_a_yes_to_an_offer_that_never_left_books_nothing(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.outage = TWILIO_500
    cid, ids = slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    answer = replies.accept(uow, settings, clock.now(), builders.PHONES[0], "SM-early-yes")
    assert answer["outcome"] == "no_open_offer"
    view = staff.get_cancellation(uow, cid)
    assert view["status"] == "open" and view["filled_by_patient_id"] is None


# --- 7. no transaction or row lock is held across a send ---------------------------------------


class SlowMessenger(RecordingMessenger):
    """Twilio taking its time: the first send blocks until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutboundMessage) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        super().send(message)


def test_a_claim_does_not_wait_for_a_slow_send(
    uow_factory: Callable[[], UnitOfWork],
    clock: FakeClock,
    settings: Settings,
    messenger: RecordingMessenger,
) -> None:
    uow = uow_factory()
    cid, ids = slot(uow, clock, settings)
    # the first two offers are out; the third's send is stuck in Twilio
    with uow:
        uow.session.execute(
            sa.text("UPDATE outbox SET next_attempt_at = next_attempt_at + interval '1 s'"
                    " WHERE id = 3")
        )
        uow.commit()
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert len(messenger.sent) == 2
    slow = SlowMessenger()
    clock.advance(seconds=2)
    sender = threading.Thread(
        target=dispatch.dispatch_due, args=(uow_factory(), slow, clock, settings)
    )
    sender.start()
    assert slow.entered.wait(10)
    started = time.monotonic()
    answer = replies.accept(uow_factory(), settings, clock.now(), builders.PHONES[0], "SM-y")
    took = time.monotonic() - started
    slow.release.set()
    sender.join(30)
    assert answer["outcome"] == "claimed"
    assert took < 5, f"the claim waited {took:.1f} s for the send"
    # the stuck text left after the slot was filled: that patient is told it is gone
    dispatch.dispatch_due(uow, messenger, clock, settings)
    texts = [m.kind for m in slow.sent + messenger.sent if m.phone == builders.PHONES[2]]
    assert texts == ["offer", "slot_filled"]
    assert builders.states(uow, cid)[ids[2]] == "withdrawn"


# --- invariant pair: an outbox row is sent once ----------------------------------------------


@pytest.mark.parametrize("repetition", range(5))
def test_fifty_dispatchers_send_each_text_once(
    uow_factory: Callable[[], UnitOfWork],
    clock: FakeClock,
    messenger: RecordingMessenger,
    repetition: int,
) -> None:
    settings = Settings.from_env({"BATCH_SIZE": "30"})
    uow = uow_factory()
    slot(uow, clock, settings, patients=30)
    results = run_together(
        [lambda: dispatch.dispatch_due(uow_factory(), messenger, clock, settings)] * 50
    )
    assert not [r for r in results if isinstance(r, Exception)]
    refs = Counter(m.ref for m in messenger.sent)
    assert len(refs) == 30 and set(refs.values()) == {1}
    assert sum(results) == 30


def test_the_database_leases_a_text_to_one_dispatcher(
    uow_factory: Callable[[], UnitOfWork], clock: FakeClock, settings: Settings
) -> None:
    """Backstop in the database: the lease is one UPDATE ... SKIP LOCKED; while one dispatcher
    holds it, nobody else gets the row, until the lease runs out."""
    uow = uow_factory()
    slot(uow, clock, settings, patients=1)
    first, second = uow_factory(), uow_factory()
    with first:
        mine = first.outbox.claim_next(clock.now(), timedelta(seconds=60))
        assert mine is not None
        with second:
            assert second.outbox.claim_next(clock.now(), timedelta(seconds=60)) is None
        first.commit()
    with second:
        assert second.outbox.claim_next(clock.now(), timedelta(seconds=60)) is None
        later = clock.now() + timedelta(seconds=61)
        taken_over = second.outbox.claim_next(later, timedelta(seconds=60))
        assert taken_over is not None and taken_over.id == mine.id


# --- invariant pair: one pending offer per patient ----------------------------------------------


@pytest.mark.parametrize("repetition", range(5))
def test_fifty_slots_opening_at_once_offer_a_patient_once(
    uow_factory: Callable[[], UnitOfWork], clock: FakeClock, settings: Settings, repetition: int
) -> None:
    uow = uow_factory()
    prov = builders.provider(uow, clock.now())
    patient = builders.waitlisted(uow, clock.now(), settings, 1)[0]
    start = clock.now() + timedelta(days=2)
    calls = [
        (
            lambda n=n: staff.create_cancellation(
                uow_factory(),
                prov,
                "Main Street",
                start + timedelta(hours=n),
                start + timedelta(hours=n, minutes=30),
                clock.now(),
                settings,
                "test",
            )
        )
        for n in range(50)
    ]
    results = run_together(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    with uow:
        pending = uow.session.execute(
            sa.text("SELECT count(*) FROM offers WHERE patient_id = :p AND state = 'pending'"),
            {"p": patient},
        ).scalar_one()
    assert pending == 1


def test_the_database_refuses_a_second_pending_offer(
    uow: UnitOfWork, clean_db: Engine, clock: FakeClock, settings: Settings
) -> None:
    prov = builders.provider(uow, clock.now())
    patient = builders.waitlisted(uow, clock.now(), settings, 1)[0]
    first = builders.cancellation(uow, clock.now(), settings, prov)
    second = builders.cancellation(
        uow, clock.now(), settings, prov, starts_in=timedelta(days=3)
    )
    assert builders.states(uow, first) == {patient: "pending"}
    with pytest.raises(sa.exc.IntegrityError), clean_db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO offers (cancellation_id, entry_id, patient_id, state, created_at)"
                " SELECT :c, entry_id, patient_id, 'pending', now() FROM offers"
                " WHERE cancellation_id = :first"
            ),
            {"c": second, "first": first},
        )


# --- 10. a wrong number stays silent -----------------------------------------------------------


def test_start_after_wrong_number_does_not_resume_texts(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = slot(uow, clock, settings, patients=4)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    stranger = builders.PHONES[0]
    replies.handoff(uow, settings, clock.now(), stranger, "SM-wrong", "wrong_number")
    assert replies.opt_in(uow, settings, clock.now(), stranger, "SM-start")["outcome"] == (
        "wrong_number"
    )
    patient = staff.get_patient(uow, ids[0])
    assert patient["opted_out"] is True and patient["wrong_number"] is True
    prov2 = builders.provider(uow, clock.now(), name="Dr. Two")
    second = builders.cancellation(uow, clock.now(), settings, prov2)
    assert ids[0] not in builders.states(uow, second)
    # staff confirm the record: the patient may opt in again
    staff.correct_patient_number(uow, ids[0], stranger, clock.now(), "test")
    assert replies.opt_in(uow, settings, clock.now(), stranger, "SM-start2")["outcome"] == (
        "opted_in"
    )
