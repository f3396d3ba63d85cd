"""BATCH_MODE=adaptive: the batch rule on its own, and the settings that turn it on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from waitlist.config import Settings, SettingsError
from waitlist.domain.model import (
    AcceptanceEstimate,
    AdaptiveRule,
    BatchSized,
    Cancellation,
    ContactHours,
    OfferingPolicy,
    WaitlistEntry,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 New York, a Tuesday
RULE = AdaptiveRule()
PRIOR = AcceptanceEstimate.blend(0, 0, None, RULE)


def test_a_new_clinic_starts_from_the_prior() -> None:
    assert PRIOR.rate == pytest.approx(RULE.prior_acceptance)
    assert PRIOR.reply == RULE.prior_reply


def test_the_clinics_own_history_outweighs_the_prior() -> None:
    estimate = AcceptanceEstimate.blend(2000, 600, timedelta(minutes=4), RULE)
    assert estimate.rate == pytest.approx(0.29, abs=0.01)
    assert estimate.reply < timedelta(minutes=5)


def test_offers_needed_for_the_target() -> None:
    # 1 - 0.9^22 > 0.9 > 1 - 0.9^21
    assert RULE.offers_needed(0.10) == 22
    assert RULE.offers_needed(0.5) == 4


def test_little_time_left_means_a_bigger_batch_and_a_shorter_hold() -> None:
    plenty = RULE.plan(timedelta(days=3), PRIOR)
    short = RULE.plan(timedelta(minutes=25), PRIOR)
    assert short.size > plenty.size
    assert short.hold <= plenty.hold
    assert "before offering stops" in short.reason
    assert "22 offers" in plenty.reason


def test_willing_patients_mean_a_smaller_batch() -> None:
    keen = AcceptanceEstimate.blend(1000, 500, timedelta(minutes=20), RULE)
    assert RULE.plan(timedelta(hours=5), keen).size < RULE.plan(timedelta(hours=5), PRIOR).size


def test_the_batch_never_exceeds_the_ceiling() -> None:
    reluctant = AcceptanceEstimate.blend(1000, 5, None, RULE)
    plan = RULE.plan(timedelta(minutes=10), reluctant)
    assert plan.size == RULE.max_batch
    assert "capped" in plan.reason


def test_only_contact_hours_count_as_time_left() -> None:
    hours = ContactHours()
    evening = datetime(2026, 12, 1, 19, 0, tzinfo=NY)
    next_noon = datetime(2026, 12, 2, 12, 0, tzinfo=NY)
    assert hours.open_between(evening, next_noon, NY) == timedelta(hours=5)


def test_a_batch_carries_its_hold_and_its_reason() -> None:
    policy = OfferingPolicy(timezone=NY, adaptive=RULE, batch_size=RULE.max_batch)
    c = Cancellation(
        provider_id=1,
        location="Main",
        slot_start=NOW + timedelta(hours=3),
        slot_end=NOW + timedelta(hours=3, minutes=30),
        created_at=NOW,
        id=1,
    )
    plan = c.plan_batch(NOW, policy, None)
    entries = [(WaitlistEntry(patient_id=n, joined_at=NOW, id=n), 0) for n in range(plan.size)]
    made = c.offer_batch(entries, NOW, plan)
    assert all(o.hold == plan.hold for o in made)
    assert c.batch_reason == plan.reason
    assert any(isinstance(e, BatchSized) for e in c.events)
    made[0].id = 1
    c.record_sent(1, NOW, timedelta(minutes=7))  # the policy's hold gives way to the batch's
    assert made[0].expires_at == NOW + plan.hold


def test_batch_mode_adaptive_is_a_setting() -> None:
    settings = Settings.from_env({"BATCH_MODE": "adaptive", "ADAPTIVE_MAX_BATCH": "12"})
    assert settings.offering.mode == "adaptive"
    assert settings.offering.adaptive is not None
    assert settings.offering.batch_size == 12
    with pytest.raises(SettingsError, match="BATCH_MODE"):
        Settings.from_env({"BATCH_MODE": "sometimes"})
    with pytest.raises(SettingsError, match="ADAPTIVE_TARGET"):
        Settings.from_env({"BATCH_MODE": "adaptive", "ADAPTIVE_TARGET": "1.5"})
