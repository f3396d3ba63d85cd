"""The domain rules on their own: no database, no clock but the one we pass."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from waitlist.domain.model import (
    Cancellation,
    CancellationFilled,
    CancellationStatus,
    ClaimOutcome,
    ContactHours,
    DomainError,
    Notice,
    NoticeDue,
    Offer,
    OfferClosed,
    OfferingPolicy,
    OfferSent,
    OfferState,
    Patient,
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
        c.offers.append(
            Offer(cancellation_id=1, entry_id=n, patient_id=n, created_at=NOW, id=n + 1)
        )
        c.record_sent(n + 1, NOW, POLICY.hold)
    c.events.clear()
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


class TestOnlySentOffersCount:
    """An offer whose text never left cannot be claimed, and can be released without penalty."""

    def unsent(self) -> Cancellation:
        c = cancellation_with_offers(1)
        c.offers.append(Offer(cancellation_id=1, entry_id=7, patient_id=7, created_at=NOW, id=8))
        return c

    def test_a_yes_to_an_unsent_offer_claims_nothing(self) -> None:
        c = self.unsent()
        assert c.claim(8, NOW).outcome == ClaimOutcome.NO_OPEN_OFFER
        assert c.is_open and c.offer(8).state == OfferState.PENDING

    def test_the_hold_starts_when_the_text_leaves(self) -> None:
        c = self.unsent()
        sent_at = NOW + timedelta(minutes=30)
        c.record_sent(8, sent_at, POLICY.hold)
        assert c.offer(8).expires_at == sent_at + POLICY.hold
        assert c.events == [OfferSent(c.offer(8))]
        assert c.claim(8, sent_at + timedelta(minutes=1)).outcome == ClaimOutcome.CLAIMED

    def test_a_repeated_send_report_changes_nothing(self) -> None:
        c = cancellation_with_offers(1)
        first = c.offer(1).expires_at
        c.record_sent(1, NOW + timedelta(minutes=3), POLICY.hold)
        assert c.offer(1).expires_at == first and c.events == []

    def test_text_leaving_after_the_slot_was_filled_queues_the_filled_notice(self) -> None:
        c = self.unsent()
        c.claim(1, NOW)
        c.events.clear()
        result = c.record_sent(8, NOW, POLICY.hold)
        assert result.closed_meanwhile
        assert c.events == [NoticeDue(c.offer(8), Notice.SLOT_FILLED)]

    def test_release_frees_the_seat_and_lets_the_patient_be_offered_again(self) -> None:
        c = self.unsent()
        c.release_unsent(8, NOW, "outage")
        assert c.offer(8).state == OfferState.RELEASED
        assert c.events == [OfferClosed(c.offer(8), notice=None, seat_freed=True)]
        again = c.make_offer(WaitlistEntry(patient_id=7, joined_at=NOW, id=7), NOW)
        assert again.patient_id == 7 and again.is_pending

    def test_a_sent_offer_cannot_be_released(self) -> None:
        with pytest.raises(DomainError):
            cancellation_with_offers(1).release_unsent(1, NOW, "outage")


class TestEvents:
    def test_claim_records_the_fill_and_tells_only_patients_who_saw_the_offer(self) -> None:
        c = cancellation_with_offers(2)
        c.offers.append(Offer(cancellation_id=1, entry_id=7, patient_id=7, created_at=NOW, id=8))
        c.claim(1, NOW)
        assert c.events == [
            CancellationFilled(c.offer(1), late=False),
            OfferClosed(c.offer(2), notice=Notice.SLOT_FILLED, seat_freed=False),
            OfferClosed(c.offer(8), notice=None, seat_freed=False),
        ]

    def test_decline_frees_a_seat_without_a_notice(self) -> None:
        c = cancellation_with_offers(2)
        c.decline(1, NOW)
        assert c.events == [OfferClosed(c.offer(1), notice=None, seat_freed=True)]

    def test_abort_tells_the_patients_holding_the_offer(self) -> None:
        c = cancellation_with_offers(1)
        c.abort(NOW)
        assert c.events == [
            OfferClosed(c.offer(1), notice=Notice.OFFER_WITHDRAWN, seat_freed=False)
        ]


class TestWrongNumber:
    def test_start_cannot_undo_a_wrong_number(self) -> None:
        patient = Patient(phone="+12025550100", display_name="A")
        assert patient.report_wrong_number(NOW)
        assert patient.opted_out and not patient.may_be_texted
        assert not patient.opt_in(NOW)
        assert patient.opted_out

    def test_staff_correcting_the_number_lets_the_patient_opt_in_again(self) -> None:
        patient = Patient(phone="+12025550100", display_name="A")
        patient.report_wrong_number(NOW)
        patient.correct_number("+12025550100", NOW)
        assert patient.opt_in(NOW) and patient.may_be_texted

    def test_a_new_number_starts_clean(self) -> None:
        patient = Patient(phone="+12025550100", display_name="A")
        patient.report_wrong_number(NOW)
        patient.correct_number("+12025550199", NOW)
        assert patient.may_be_texted and patient.phone == "+12025550199"


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
