"""Deterministic availability parsing."""

from __future__ import annotations

from datetime import date

import pytest
from action_test_support import FIXED_NOW, NEW_YORK

from actions.availability import parse_availability

ALL_BUT_FRI = ["mon", "tue", "wed", "thu", "sat", "sun"]


@pytest.mark.parametrize(
    ("text", "days", "time_of_day"),
    [
        ("only mornings", None, "morning"),
        ("not Fridays", ALL_BUT_FRI, None),
        ("I can only do tuesdays and thursdays", ["tue", "thu"], None),
        ("afternoons work better", None, "afternoon"),
        ("Mondays don't work for me", ["tue", "wed", "thu", "fri", "sat", "sun"], None),
        ("any day but friday", ALL_BUT_FRI, None),
        ("weekdays except wednesday", ["mon", "tue", "thu", "fri"], None),
        ("no fridays or mondays please", ["tue", "wed", "thu", "sat", "sun"], None),
        ("weekends only", ["sat", "sun"], None),
        ("mornings, but not on mondays", ["tue", "wed", "thu", "fri", "sat", "sun"], "morning"),
        ("I can't do mornings, only afternoons", None, "afternoon"),
        ("I work mornings now", None, None),
        ("evenings after 5", None, "evening"),
        ("tues/thurs", ["tue", "thu"], None),
        ("MON WED FRI", ["mon", "wed", "fri"], None),
        ("anytime works", None, "any"),
        ("solo por las mañanas", None, "morning"),
        ("los viernes no", ALL_BUT_FRI, None),
        ("lunes y miércoles", ["mon", "wed"], None),
        ("prefiero las tardes", None, "afternoon"),
    ],
)
def test_days_and_time_of_day(text, days, time_of_day) -> None:
    result = parse_availability(text, now=FIXED_NOW, tz=NEW_YORK)
    assert result.days_of_week == days
    assert result.time_of_day == time_of_day


def test_last_date() -> None:
    result = parse_availability("I'm free until Dec 20", now=FIXED_NOW, tz=NEW_YORK)
    assert result.not_after == date(2026, 12, 20).isoformat()
    assert result.as_fields() == {"not_after": "2026-12-20"}


@pytest.mark.parametrize("text", ["", None, "my schedule changed", "hello"])
def test_nothing_understood(text) -> None:
    assert parse_availability(text, now=FIXED_NOW, tz=NEW_YORK).is_empty()
