"""Patient replies through the service layer: outcomes, state changes and duplicate deliveries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, time, timedelta

from sqlalchemy.engine import Engine

from tests.backend import builders
from tests.backend.integration.test_claims import run_together
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.service_layer import dispatch, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

P0, P1, P2 = builders.PHONES[:3]


def offered_slot(
    uow: UnitOfWork,
    clock: FakeClock,
    settings: Settings,
    messenger: RecordingMessenger,
    patients: int = 4,
) -> tuple[int, list[int]]:
    prov = builders.provider(uow, clock.now())
    ids = builders.waitlisted(uow, clock.now(), settings, patients)
    cid = builders.cancellation(uow, clock.now(), settings, prov)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    return cid, ids


def test_accept_claims_with_slot_details(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    answer = replies.accept(uow, settings, clock.now(), P1, "SM1")
    assert answer["outcome"] == "claimed"
    assert answer["offer"]["slot_date"] == "Thu Dec 3"
    assert answer["offer"]["slot_time"] == "10:00 AM"
    assert answer["offer"]["location"] == "Main Street"
    assert answer["patient"] == {"language": "en", "opted_out": False, "on_waitlist": False}
    view = staff.get_cancellation(uow, cid)
    assert view["filled_by_patient_id"] == ids[1]
    assert "cancellation_filled" in [e["kind"] for e in view["events"]]
    dispatch.dispatch_due(uow, messenger, clock, settings)
    notices = sorted(m.phone for m in messenger.sent if m.kind == "slot_filled")
    assert notices == [P0, P2]


def test_loser_hears_too_late_and_stays_on_the_list(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    offered_slot(uow, clock, settings, messenger)
    replies.accept(uow, settings, clock.now(), P0, "SM1")
    answer = replies.accept(uow, settings, clock.now(), P1, "SM2")
    assert answer["outcome"] == "too_late"
    assert answer["patient"]["on_waitlist"] is True


def test_yes_without_an_offer(uow: UnitOfWork, clock: FakeClock, settings: Settings) -> None:
    pid = builders.patient(uow, clock.now(), 0)
    builders.entry(uow, clock.now(), settings, pid)
    answer = replies.accept(uow, settings, clock.now(), P0, "SM1")
    assert answer["outcome"] == "no_open_offer" and answer["patient"]["on_waitlist"] is True


def test_unknown_number(uow: UnitOfWork, clock: FakeClock, settings: Settings) -> None:
    answer = replies.accept(uow, settings, clock.now(), "+12025559999", "SM1")
    assert answer == {"outcome": "unknown_patient", "offer": None, "patient": None}


def test_duplicate_message_id_has_one_effect(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    first = replies.decline(uow, settings, clock.now(), P0, "SM-dup")
    again = replies.decline(uow, settings, clock.now(), P0, "SM-dup")
    assert first == again and first["outcome"] == "declined"
    assert Counter(builders.states(uow, cid).values()) == {"declined": 1, "pending": 3}


def test_duplicate_deliveries_at_the_same_moment(
    uow_factory: Callable[[], UnitOfWork],
    clean_db: Engine,
    clock: FakeClock,
    settings: Settings,
    messenger: RecordingMessenger,
) -> None:
    uow = uow_factory()
    cid, ids = offered_slot(uow, clock, settings, messenger)
    answers = run_together(
        [lambda: replies.decline(uow_factory(), settings, clock.now(), P0, "SM-twice")] * 2
    )
    assert answers[0] == answers[1] and answers[0]["outcome"] == "declined"
    with uow:
        events = uow.events.for_cancellation(cid)
    assert [e["kind"] for e in events].count("offer_declined_by_patient") == 1


def test_defer_declines_and_sets_not_before(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    answer = replies.defer(uow, settings, clock.now(), P0, "SM1", date(2026, 12, 7))
    assert answer["outcome"] == "deferred" and answer["not_before"] == "2026-12-07"
    states = builders.states(uow, cid)
    assert states[ids[0]] == "declined" and states[ids[3]] == "pending"
    with uow:
        (entry,) = uow.waitlist.active_for_patient(ids[0], for_update=False)
        assert entry.not_before == date(2026, 12, 7)


def test_availability_update(uow: UnitOfWork, clock: FakeClock, settings: Settings) -> None:
    pid = builders.patient(uow, clock.now(), 0)
    eid = builders.entry(uow, clock.now(), settings, pid)
    answer = replies.update_availability(
        uow, settings, clock.now(), P0, "SM1", [0, 2], "morning", None
    )
    assert answer["outcome"] == "availability_updated"
    view = staff.get_entry(uow, eid, clock.now(), settings)
    assert view["days_of_week"] == ["mon", "wed"]
    assert (view["earliest_time"], view["latest_time"]) == (None, "12:00")
    assert time(12, 0).strftime("%H:%M") == view["latest_time"]


def test_leave_removes_entries_and_frees_the_seat(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    assert replies.leave(uow, settings, clock.now(), P0, "SM1")["outcome"] == "left_waitlist"
    assert builders.states(uow, cid)[ids[3]] == "pending"
    assert replies.leave(uow, settings, clock.now(), P0, "SM2")["outcome"] == "not_on_waitlist"


def test_opt_out_withdraws_and_silences(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    assert replies.opt_out(uow, settings, clock.now(), P0, "SM1")["outcome"] == "opted_out"
    states = builders.states(uow, cid)
    assert states[ids[0]] == "withdrawn" and states[ids[3]] == "pending"
    assert staff.get_patient(uow, ids[0])["opted_out"] is True
    replies.accept(uow, settings, clock.now(), P1, "SM2")  # slot filled: notices go out
    dispatch.dispatch_due(uow, messenger, clock, settings)
    assert [m.kind for m in messenger.to(P0)] == ["offer"]  # nothing after the opt-out
    assert replies.accept(uow, settings, clock.now(), P0, "SM3")["outcome"] == "opted_out"
    assert replies.opt_in(uow, settings, clock.now(), P0, "SM4")["outcome"] == "opted_in"
    assert staff.get_patient(uow, ids[0])["opted_out"] is False


def test_wrong_number_opts_out_and_flags_for_staff(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    cid, ids = offered_slot(uow, clock, settings, messenger)
    answer = replies.handoff(uow, settings, clock.now(), P0, "SM1", "wrong_number")
    assert answer["outcome"] == "handoff_recorded"
    assert staff.get_patient(uow, ids[0])["opted_out"] is True
    events = staff.list_events(uow, "handoff_requested", 10, 0)["items"]
    assert events[0]["data"] == {"reason": "wrong_number"}


def test_current_offer_details(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    offered_slot(uow, clock, settings, messenger)
    clock.advance(minutes=2)
    answer = replies.current_offer(uow, settings, clock.now(), P0)
    assert answer["outcome"] == "open_offer"
    assert answer["offer"]["minutes_left"] == 5
    assert answer["offer"]["slot_start"] == "2026-12-03T10:00:00-05:00"


def test_spanish_patient_gets_spanish_date(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> None:
    prov = builders.provider(uow, clock.now())
    pid = builders.patient(uow, clock.now(), 0, language="es")
    builders.entry(uow, clock.now(), settings, pid)
    builders.cancellation(uow, clock.now(), settings, prov, starts_in=timedelta(days=2, hours=5))
    dispatch.dispatch_due(uow, messenger, clock, settings)
    (message,) = messenger.sent
    assert (message.language, message.slot_date, message.slot_time) == ("es", "jue 3 dic", "15:00")
