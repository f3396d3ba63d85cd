"""The domain rules on their own: no database, no clock but the one we pass."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from waitlist.domain.model import (
    Cancellation,
    CancellationStatus,
    ClaimOutcome,
    ContactHours,
    DomainError,
    Offer,
    OfferingPolicy,
    OfferState,
    ScoringPolicy,
    Slot,
    WaitlistEntry,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 New York, a Tuesday
POLICY = OfferingPolicy(timezone=NY)


def cancellation_with_offers(count: int, start: datetime = NOW + timedelta(days=1)) -> Cancellation:
    c = Cancellation(
        provider_id=1,
        location="Main",
        slot_start=start,
        slot_end=start + timedelta(minutes=30),
        created_at=NOW,
        id=1,
    )
    for n in range(count):
        offer = Offer(cancellation_id=1, entry_id=n, patient_id=n, created_at=NOW, id=n + 1)
        offer.mark_sent(NOW, POLICY.hold)
        c.offers.append(offer)
    return c


class TestClaim:
    def test_first_yes_wins_and_siblings_are_withdrawn(self) -> None:
        c = cancellation_with_offers(3)
        result = c.claim(2, NOW + timedelta(minutes=1))
        assert result.outcome == ClaimOutcome.CLAIMED
        assert c.status == CancellationStatus.FILLED and c.filled_by_patient_id == 1
        assert [o.state for o in c.offers] == [
            OfferState.WITHDRAWN,
            OfferState.ACCEPTED,
            OfferState.WITHDRAWN,
        ]
        assert {o.id for o in result.withdrawn} == {1, 3}

    def test_second_yes_is_too_late(self) -> None:
        c = cancellation_with_offers(3)
        c.claim(1, NOW)
        assert c.claim(2, NOW).outcome == ClaimOutcome.TOO_LATE
        assert c.offer(2).state == OfferState.WITHDRAWN

    def test_winner_repeating_yes_stays_claimed(self) -> None:
        c = cancellation_with_offers(1)
        c.claim(1, NOW)
        assert c.claim(1, NOW + timedelta(minutes=1)).outcome == ClaimOutcome.CLAIMED

    def test_late_yes_after_expiry_still_wins_while_open(self) -> None:
        c = cancellation_with_offers(2)
        c.expire_hold(1, NOW + timedelta(minutes=8))
        result = c.claim(1, NOW + timedelta(minutes=9))
        assert result.outcome == ClaimOutcome.LATE_CLAIMED
        assert c.offer(1).state == OfferState.ACCEPTED

    def test_yes_after_hold_ran_out_but_before_the_sweep_is_late(self) -> None:
        c = cancellation_with_offers(1)
        assert c.claim(1, NOW + timedelta(minutes=7)).outcome == ClaimOutcome.LATE_CLAIMED

    def test_declined_offer_cannot_be_claimed(self) -> None:
        c = cancellation_with_offers(2)
        c.decline(1, NOW)
        assert c.claim(1, NOW).outcome == ClaimOutcome.NO_OPEN_OFFER
        assert c.is_open

    def test_abort_withdraws_pending_and_blocks_claims(self) -> None:
        c = cancellation_with_offers(2)
        assert len(c.abort(NOW)) == 2
        assert c.claim(1, NOW).outcome == ClaimOutcome.TOO_LATE
        with pytest.raises(DomainError):
            c.abort(NOW)


class TestSeats:
    def test_rolling_fills_free_seats(self) -> None:
        c = cancellation_with_offers(1)
        assert c.seats_to_fill(NOW, POLICY) == 2

    def test_strict_waits_for_whole_batch(self) -> None:
        strict = OfferingPolicy(timezone=NY, strict_batches=True)
        assert cancellation_with_offers(1).seats_to_fill(NOW, strict) == 0
        assert cancellation_with_offers(0).seats_to_fill(NOW, strict) == 3

    def test_no_seats_outside_contact_hours(self) -> None:
        night = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 22:00 New York
        assert cancellation_with_offers(0).seats_to_fill(night, POLICY) == 0

    def test_expires_inside_lead_time(self) -> None:
        c = cancellation_with_offers(2, start=NOW + timedelta(minutes=59))
        assert c.seats_to_fill(NOW, POLICY) == 0
        withdrawn = c.expire_if_too_close(NOW, POLICY)
        assert withdrawn is not None and len(withdrawn) == 2
        assert c.status == CancellationStatus.EXPIRED

    def test_not_expired_before_lead_time(self) -> None:
        c = cancellation_with_offers(0, start=NOW + timedelta(minutes=61))
        assert c.expire_if_too_close(NOW, POLICY) is None

    def test_make_offer_refuses_second_offer_to_same_patient(self) -> None:
        c = cancellation_with_offers(1)
        entry = WaitlistEntry(patient_id=0, joined_at=NOW, id=9)
        with pytest.raises(DomainError):
            c.make_offer(entry, NOW)


class TestContactHours:
    @pytest.mark.parametrize(
        ("local", "is_open"),
        [(time(7, 59), False), (time(8, 0), True), (time(19, 59), True), (time(20, 0), False)],
    )
    def test_window_edges(self, local: time, is_open: bool) -> None:
        moment = datetime.combine(date(2026, 12, 1), local, tzinfo=NY)
        assert ContactHours().is_open(moment, NY) is is_open

    def test_next_opening_is_next_morning(self) -> None:
        late = datetime(2026, 12, 1, 21, 30, tzinfo=NY)
        assert ContactHours().next_opening(late, NY) == datetime(2026, 12, 2, 8, 0, tzinfo=NY)


def entry(**fields: object) -> WaitlistEntry:
    return WaitlistEntry(patient_id=1, joined_at=NOW, **fields)  # type: ignore[arg-type]


class TestScore:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({}, 0),
            ({"urgent": True}, 30),
            ({"manual_boost": 40}, 40),
            ({"current_appointment_at": NOW + timedelta(days=180)}, 20),
            ({"current_appointment_at": NOW + timedelta(days=179)}, 10),
            ({"current_appointment_at": NOW + timedelta(days=90)}, 10),
            ({"current_appointment_at": NOW + timedelta(days=89)}, 5),
            ({"current_appointment_at": NOW + timedelta(days=30)}, 5),
            ({"current_appointment_at": NOW + timedelta(days=29)}, 0),
            ({"joined_at": NOW - timedelta(days=29)}, 0),
            ({"joined_at": NOW - timedelta(days=30)}, 1),
            ({"joined_at": NOW - timedelta(days=95)}, 3),
            ({"joined_at": NOW - timedelta(days=3000)}, 10),
            (
                {
                    "urgent": True,
                    "manual_boost": 5,
                    "current_appointment_at": NOW + timedelta(days=200),
                    "joined_at": NOW - timedelta(days=60),
                },
                57,
            ),
        ],
    )
    def test_score(self, fields: dict, expected: int) -> None:
        e = WaitlistEntry(patient_id=1, joined_at=fields.pop("joined_at", NOW), **fields)
        assert ScoringPolicy().score(e, NOW) == expected


SLOT = Slot(
    provider_id=7,
    provider_type="dermatology",
    location="Main",
    start=datetime(2026, 12, 3, 14, 0, tzinfo=NY),
    end=datetime(2026, 12, 3, 14, 30, tzinfo=NY),
)


class TestEligibility:
    @pytest.mark.parametrize(
        ("fields", "eligible"),
        [
            ({}, True),
            ({"provider_ids": [7]}, True),
            ({"provider_ids": [8]}, False),
            ({"provider_type": "dermatology"}, True),
            ({"provider_type": "cardiology"}, False),
            ({"provider_ids": [8], "provider_type": "dermatology"}, True),
            ({"location": "main"}, True),
            ({"location": "North"}, False),
            ({"current_appointment_at": datetime(2026, 12, 10, tzinfo=NY)}, True),
            ({"current_appointment_at": datetime(2026, 12, 3, 14, 0, tzinfo=NY)}, False),
            ({"not_before": date(2026, 12, 3)}, True),
            ({"not_before": date(2026, 12, 4)}, False),
            ({"not_after": date(2026, 12, 3)}, True),
            ({"not_after": date(2026, 12, 2)}, False),
            ({"days_of_week": [3]}, True),  # Thursday
            ({"days_of_week": [0, 1]}, False),
            ({"earliest_time": time(12, 0)}, True),
            ({"earliest_time": time(14, 1)}, False),
            ({"latest_time": time(14, 30)}, True),
            ({"latest_time": time(14, 29)}, False),
        ],
    )
    def test_rule(self, fields: dict, eligible: bool) -> None:
        assert entry(**fields).accepts(SLOT, NY) is eligible
