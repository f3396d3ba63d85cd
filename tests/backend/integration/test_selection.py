"""Eligibility and score as the selection query computes them, one case per rule."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.backend import builders
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.domain import model
from waitlist.service_layer import dispatch, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

NY = ZoneInfo("America/New_York")
# the slot used by every case: Thursday 2026-12-03 14:00-14:30 New York, provider "Dr. Lee"
SLOT_START = datetime(2026, 12, 3, 14, 0, tzinfo=NY)

CASES = [
    ({}, True),
    ({"provider_ids": "SLOT_PROVIDER"}, True),
    ({"provider_ids": "OTHER_PROVIDER"}, False),
    ({"provider_type": "dermatology"}, True),
    ({"provider_type": "cardiology"}, False),
    ({"provider_ids": "OTHER_PROVIDER", "provider_type": "dermatology"}, True),
    ({"location": "main street"}, True),
    ({"location": "North"}, False),
    ({"current_appointment_at": datetime(2026, 12, 10, 9, 0, tzinfo=NY)}, True),
    ({"current_appointment_at": SLOT_START}, False),
    ({"not_before": date(2026, 12, 3)}, True),
    ({"not_before": date(2026, 12, 4)}, False),
    ({"not_after": date(2026, 12, 3)}, True),
    ({"not_after": date(2026, 12, 2)}, False),
    ({"days_of_week": [3]}, True),
    ({"days_of_week": [0, 1]}, False),
    ({"earliest_time": time(14, 0)}, True),
    ({"earliest_time": time(14, 1)}, False),
    ({"latest_time": time(14, 30)}, True),
    ({"latest_time": time(14, 29)}, False),
]


def _slot_cancellation(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, provider_id: int
) -> int:
    view = staff.create_cancellation(
        uow,
        provider_id,
        "Main Street",
        SLOT_START,
        SLOT_START + timedelta(minutes=30),
        clock.now(),
        settings,
        "test",
    )
    return view["id"]


@pytest.mark.parametrize(("fields", "eligible"), CASES)
def test_eligibility_rule(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, fields: dict, eligible: bool
) -> None:
    now = clock.now()
    slot_provider = builders.provider(uow, now, "Dr. Lee", "dermatology")
    other_provider = builders.provider(uow, now, "Dr. Ortiz", "dermatology")
    fields = dict(fields)
    if fields.get("provider_ids") == "SLOT_PROVIDER":
        fields["provider_ids"] = [slot_provider]
    elif fields.get("provider_ids") == "OTHER_PROVIDER":
        fields["provider_ids"] = [other_provider]
    pid = builders.patient(uow, now, 0)
    builders.entry(uow, now, settings, pid, **fields)
    cid = _slot_cancellation(uow, clock, settings, slot_provider)
    offered = builders.states(uow, cid)
    assert (pid in offered) is eligible


def test_opted_out_patient_is_skipped(
    uow: UnitOfWork, clock: FakeClock, settings: Settings
) -> None:
    now = clock.now()
    prov = builders.provider(uow, now)
    a, b = builders.waitlisted(uow, now, settings, 2)
    replies.opt_out(uow, settings, now, builders.PHONES[0], "SM-out")
    cid = _slot_cancellation(uow, clock, settings, prov)
    assert builders.states(uow, cid) == {b: "pending"}


def test_patient_with_a_pending_offer_elsewhere_is_skipped(
    uow: UnitOfWork, clock: FakeClock, settings: Settings
) -> None:
    now = clock.now()
    prov = builders.provider(uow, now)
    (a,) = builders.waitlisted(uow, now, settings, 1)
    first = _slot_cancellation(uow, clock, settings, prov)
    assert builders.states(uow, first) == {a: "pending"}
    second = builders.cancellation(uow, now, settings, prov, starts_in=timedelta(days=3))
    assert builders.states(uow, second) == {}


def test_daily_and_weekly_caps(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger
) -> None:
    """3 offers in 24 hours, 6 in 7 days: the 4th offer the same day goes to nobody."""
    prov = builders.provider(uow, clock.now())
    (a,) = builders.waitlisted(uow, clock.now(), settings, 1)
    offered_days = []
    for day in range(8):
        for n in range(4):
            clock.set(builders.START + timedelta(days=day, minutes=n * 10))
            cid = builders.cancellation(
                uow, clock.now(), settings, prov, starts_in=timedelta(days=20 + day, hours=n)
            )
            if a in builders.states(uow, cid):
                offered_days.append(day)
                dispatch.dispatch_due(uow, messenger, clock, settings)
                replies.decline(uow, settings, clock.now(), builders.PHONES[0], f"SM{day}-{n}")
    # day 0: 3 offers (cap), day 1: 3 more (weekly cap 6 reached), days 2-6: none, day 7: again
    assert offered_days.count(0) == 3
    assert offered_days.count(1) == 3
    assert all(offered_days.count(d) == 0 for d in range(2, 7))
    assert offered_days.count(7) == 3


def test_order_is_score_then_earliest_joined(
    uow: UnitOfWork, clock: FakeClock, settings: Settings
) -> None:
    now = clock.now()
    prov = builders.provider(uow, now)
    plain_early = builders.patient(uow, now, 0)
    builders.entry(uow, now - timedelta(minutes=5), settings, plain_early)
    plain_late = builders.patient(uow, now, 1)
    builders.entry(uow, now - timedelta(minutes=1), settings, plain_late)
    boosted = builders.patient(uow, now, 2)
    builders.entry(uow, now, settings, boosted, manual_boost=5)
    urgent = builders.patient(uow, now, 3)
    builders.entry(uow, now, settings, urgent, urgent=True)
    far_appt = builders.patient(uow, now, 4)
    builders.entry(uow, now, settings, far_appt, current_appointment_at=now + timedelta(days=200))
    cid = _slot_cancellation(uow, clock, settings, prov)
    assert set(builders.states(uow, cid)) == {urgent, far_appt, boosted}
    with uow:
        events = uow.events.for_cancellation(cid)
    scores = [(e["patient_id"], e["data"]["score"]) for e in events if e["kind"] == "offer_created"]
    assert scores == [(urgent, 30), (far_appt, 20), (boosted, 5)]
    # the two plain entries tie on score 0: the earlier one comes first when a seat frees
    dispatch.dispatch_due(uow, RecordingMessenger(), clock, settings)
    replies.decline(uow, settings, now, builders.PHONES[2], "SM-d1")
    assert builders.states(uow, cid)[plain_early] == "pending"
    assert plain_late not in builders.states(uow, cid)


@pytest.mark.parametrize("days_waited", [0, 29, 30, 61, 299, 300, 1000])
@pytest.mark.parametrize("appointment_days", [None, 10, 30, 89, 90, 179, 180, 400])
def test_sql_score_matches_domain_score(
    uow: UnitOfWork,
    clock: FakeClock,
    settings: Settings,
    days_waited: int,
    appointment_days: int | None,
) -> None:
    now = clock.now()
    pid = builders.patient(uow, now, 0)
    fields = {"urgent": True, "manual_boost": 7}
    if appointment_days is not None:
        fields["current_appointment_at"] = now + timedelta(days=appointment_days, hours=1)
    eid = builders.entry(uow, now, settings, pid, **fields)
    builders.set_joined(uow, eid, now - timedelta(days=days_waited, hours=1))
    view = staff.get_entry(uow, eid, now, settings)
    with uow:
        entry = uow.waitlist.get(eid)
        assert entry is not None
        expected_parts = settings.scoring.parts(entry, now)
        expected_score = settings.scoring.score(entry, now)
    assert view["score_parts"] == expected_parts
    assert view["score"] == expected_score


def test_entry_fulfilled_or_removed_is_not_offered(
    uow: UnitOfWork, clock: FakeClock, settings: Settings
) -> None:
    now = clock.now()
    prov = builders.provider(uow, now)
    a, b = builders.waitlisted(uow, now, settings, 2)
    with uow:
        entry_a = uow.waitlist.active_for_patient(a)[0].id
    staff.remove_entry(uow, entry_a, now, settings, "test")
    cid = _slot_cancellation(uow, clock, settings, prov)
    assert builders.states(uow, cid) == {b: "pending"}
    assert model.EntryStatus.REMOVED.value == staff.get_entry(uow, entry_a, now, settings)["status"]


def test_named_provider_rows_follow_the_entry(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, clean_db
) -> None:
    """The trigger-kept waitlist_entry_providers mirrors each entry's provider list and state."""
    now = clock.now()
    a, b = builders.provider(uow, now), builders.provider(uow, now, "Dr. Ortiz")
    pid = builders.patient(uow, now, 0)
    eid = builders.entry(uow, now, settings, pid, provider_ids=[a, b])

    def rows() -> list[tuple]:
        with clean_db.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT provider_id, status, urgent, manual_boost FROM waitlist_entry_providers"
                    " WHERE entry_id = :e ORDER BY provider_id"
                ),
                {"e": eid},
            ).all()

    assert rows() == [(a, "active", False, 0), (b, "active", False, 0)]
    staff.update_entry(
        uow,
        eid,
        staff.EntryInput(provider_ids=[b], urgent=True, manual_boost=4),
        {"provider_ids", "urgent", "manual_boost"},
        now,
        settings,
        "test",
    )
    assert rows() == [(b, "active", True, 4)]
    staff.remove_entry(uow, eid, now, settings, "test")
    assert rows() == [(b, "removed", True, 4)]
