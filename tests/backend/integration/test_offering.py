"""Rolling seats, hold expiry, failed sends, contact hours, lead time: state in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.backend import builders
from waitlist.adapters.messenger import RecordingMessenger, SendError
from waitlist.config import Settings
from waitlist.service_layer import dispatch, offering, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork


def setup_slot(
    uow: UnitOfWork,
    clock: FakeClock,
    settings: Settings,
    patients: int = 5,
    starts_in: timedelta = timedelta(days=2),
) -> tuple[int, list[int]]:
    prov = builders.provider(uow, clock.now())
    ids = builders.waitlisted(uow, clock.now(), settings, patients)
    return builders.cancellation(uow, clock.now(), settings, prov, starts_in=starts_in), ids


def test_new_cancellation_offers_first_batch_and_texts_it(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    assert builders.states(uow, cid) == {ids[0]: "pending", ids[1]: "pending", ids[2]: "pending"}
    assert dispatch.dispatch_due(uow, messenger, clock, settings) == 3
    assert [m.phone for m in messenger.sent] == builders.PHONES[:3]
    first = messenger.sent[0]
    assert (first.kind, first.slot_date, first.slot_time, first.location, first.hold_minutes) == (
        "offer",
        "Thu Dec 3",
        "10:00 AM",
        "Main Street",
        7,
    )
    offers = builders.offers_of(uow, cid)
    assert all(o["sent_at"] == clock.now().isoformat() for o in offers)
    assert all(o["expires_at"] == (clock.now() + timedelta(minutes=7)).isoformat() for o in offers)


def test_decline_refills_the_seat_at_once(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    answer = replies.decline(uow, settings, clock.now(), builders.PHONES[1], "SM-decline")
    assert answer["outcome"] == "declined"
    assert builders.states(uow, cid) == {
        ids[0]: "pending",
        ids[1]: "declined",
        ids[2]: "pending",
        ids[3]: "pending",
    }
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert messenger.sent[-1].phone == builders.PHONES[3]


def test_expiry_refills_after_the_sweep(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    clock.advance(minutes=6, seconds=59)
    assert offering.sweep(uow, clock.now(), settings)["expired"] == 0
    clock.advance(seconds=1)
    result = offering.sweep(uow, clock.now(), settings)
    assert result["expired"] == 3 and result["offered"] == 2  # only 5 patients on the list
    assert builders.states(uow, cid) == {
        ids[0]: "expired",
        ids[1]: "expired",
        ids[2]: "expired",
        ids[3]: "pending",
        ids[4]: "pending",
    }


def test_failed_send_frees_the_seat(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.failures[builders.PHONES[0]] = SendError("Twilio 500", permanent=True)
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    states = builders.states(uow, cid)
    assert states[ids[0]] == "failed"
    assert [states.get(i) for i in ids[1:4]] == ["pending"] * 3
    assert {m.phone for m in messenger.sent} == set(builders.PHONES[1:4])


def test_carrier_opt_out_marks_the_patient(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    messenger.failures[builders.PHONES[0]] = SendError("21610", permanent=True, code="21610")
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert builders.states(uow, cid)[ids[0]] == "failed"
    assert staff.get_patient(uow, ids[0])["opted_out"] is True


def test_transient_failure_keeps_the_offer_and_retries(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    """Rasa down: nothing is lost, the text goes out once Rasa is back, and the hold starts then."""
    messenger.failures[builders.PHONES[0]] = SendError("Rasa unreachable", permanent=False)
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert builders.states(uow, cid)[ids[0]] == "pending"
    assert builders.PHONES[0] not in {m.phone for m in messenger.sent}
    del messenger.failures[builders.PHONES[0]]
    clock.advance(seconds=1)
    assert dispatch.dispatch_due(uow, messenger, clock, settings) == 0  # backing off
    clock.advance(seconds=2)
    assert dispatch.dispatch_due(uow, messenger, clock, settings) == 1
    assert messenger.sent[-1].phone == builders.PHONES[0]
    offer = [o for o in builders.offers_of(uow, cid) if o["patient_id"] == ids[0]][0]
    assert offer["expires_at"] == (clock.now() + timedelta(minutes=7)).isoformat()


def test_offers_wait_for_contact_hours(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    clock.set(datetime(2026, 12, 2, 2, 30, tzinfo=UTC))  # 21:30 New York
    cid, ids = setup_slot(uow, clock, settings)
    assert builders.states(uow, cid) == {}
    clock.set(datetime(2026, 12, 2, 12, 59, tzinfo=UTC))  # 07:59
    offering.sweep(uow, clock.now(), settings)
    assert builders.states(uow, cid) == {}
    clock.set(datetime(2026, 12, 2, 13, 0, tzinfo=UTC))  # 08:00
    offering.sweep(uow, clock.now(), settings)
    assert len(builders.states(uow, cid)) == 3


def test_lead_time_expires_the_cancellation(
    uow: UnitOfWork, clock: FakeClock, messenger: RecordingMessenger
) -> None:
    settings = Settings.from_env({"HOLD_MINUTES": "45"})
    cid, ids = setup_slot(uow, clock, settings, starts_in=timedelta(minutes=90))
    dispatch.dispatch_due(uow, messenger, clock, settings)
    clock.advance(minutes=29)
    offering.sweep(uow, clock.now(), settings)
    assert staff.get_cancellation(uow, cid)["status"] == "open"
    clock.advance(minutes=1)
    offering.sweep(uow, clock.now(), settings)
    view = staff.get_cancellation(uow, cid)
    assert view["status"] == "expired"
    assert {o["state"] for o in view["offers"]} == {"withdrawn"}
    dispatch.dispatch_due(uow, messenger, clock, settings)
    notices = [m for m in messenger.sent if m.kind == "offer_withdrawn"]
    assert sorted(m.phone for m in notices) == builders.PHONES[:3]


def test_slot_too_close_is_never_offered(
    uow: UnitOfWork, clock: FakeClock, settings: Settings
) -> None:
    cid, _ = setup_slot(uow, clock, settings, starts_in=timedelta(minutes=45))
    view = staff.get_cancellation(uow, cid)
    assert view["status"] == "expired" and view["offers"] == []


def test_strict_batches_wait_for_the_whole_batch(
    uow: UnitOfWork, clock: FakeClock, messenger: RecordingMessenger
) -> None:
    strict = Settings.from_env({"BATCH_MODE": "strict", "BATCH_SIZE": "2"})
    cid, ids = setup_slot(uow, clock, strict)
    dispatch.dispatch_due(uow, messenger, clock, strict)
    replies.decline(uow, strict, clock.now(), builders.PHONES[0], "SM-1")
    assert builders.states(uow, cid) == {ids[0]: "declined", ids[1]: "pending"}
    replies.decline(uow, strict, clock.now(), builders.PHONES[1], "SM-2")
    assert builders.states(uow, cid) == {
        ids[0]: "declined",
        ids[1]: "declined",
        ids[2]: "pending",
        ids[3]: "pending",
    }


def test_abort_withdraws_and_tells_patients(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    view = staff.abort_cancellation(uow, cid, clock.now(), "test")
    assert view["status"] == "aborted"
    assert {o["state"] for o in view["offers"]} == {"withdrawn"}
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert (
        sorted(m.phone for m in messenger.sent if m.kind == "offer_withdrawn")
        == builders.PHONES[:3]
    )


def test_offer_withdrawn_before_sending_is_never_sent(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    staff.abort_cancellation(uow, cid, clock.now(), "test")
    assert dispatch.dispatch_due(uow, messenger, clock, settings) == 0  # dropped at abort
    assert messenger.sent == []


def test_delivery_failure_callback_frees_the_seat(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = setup_slot(uow, clock, settings)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    refs = {m.phone: m.ref for m in messenger.sent}
    result = dispatch.record_delivery_status(
        uow, settings, clock.now(), refs[builders.PHONES[2]], "SMx", "undelivered", "30003"
    )
    assert result == "offer failed"
    states = builders.states(uow, cid)
    assert states[ids[2]] == "failed" and states[ids[3]] == "pending"
    dispatch.record_delivery_status(
        uow, settings, clock.now(), refs[builders.PHONES[0]], "SMy", "delivered", None
    )
    offer = [o for o in builders.offers_of(uow, cid) if o["patient_id"] == ids[0]][0]
    assert (offer["state"], offer["delivery_status"]) == ("pending", "delivered")
