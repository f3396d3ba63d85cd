"""Defer date parsing, always against a fixed "now" in the clinic's zone."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from action_test_support import FIXED_NOW, NEW_YORK

from actions.dates import clinic_today, format_date, resolve_not_before

# FIXED_NOW is Wednesday 2026-11-25, 10:00 in New York.


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("next week", date(2026, 11, 30)),  # the Monday of next week
        ("can't make it, try me next week", date(2026, 11, 30)),
        ("NEXT WEEK", date(2026, 11, 30)),
        ("nxt wk", date(2026, 11, 30)),
        ("in two weeks", date(2026, 12, 9)),
        ("in 2 weeks", date(2026, 12, 9)),
        ("in a couple weeks", date(2026, 12, 9)),
        ("after the 15th", date(2026, 12, 16)),  # the 15th has passed this month
        ("the 30th", date(2026, 11, 30)),
        ("Monday", date(2026, 11, 30)),
        ("friday", date(2026, 11, 27)),
        ("next friday", date(2026, 12, 4)),  # Friday of next week
        ("Wednesday", date(2026, 12, 2)),  # today is Wednesday: the next one
        ("next month", date(2026, 12, 1)),
        ("tomorrow", date(2026, 11, 26)),
        ("week after next", date(2026, 12, 7)),
        ("after next week", date(2026, 12, 7)),
        ("in 10 days", date(2026, 12, 5)),
        ("3 weeks from now", date(2026, 12, 16)),
        ("end of the month", date(2026, 11, 30)),
        ("after christmas", date(2026, 12, 26)),
        ("mid december", date(2026, 12, 15)),
        ("dec 10", date(2026, 12, 10)),
        ("December 10th", date(2026, 12, 10)),
        ("after dec 1", date(2026, 12, 2)),
        ("12/10", date(2026, 12, 10)),
        ("jan 5", date(2027, 1, 5)),  # passed this year: next year
        ("next year", date(2027, 1, 1)),
        # Spanish, with and without accents
        ("la proxima semana", date(2026, 11, 30)),
        ("la próxima semana", date(2026, 11, 30)),
        ("la semana que viene", date(2026, 11, 30)),
        ("el mes que viene", date(2026, 12, 1)),
        ("después del 15", date(2026, 12, 16)),
        ("en dos semanas", date(2026, 12, 9)),
        ("el lunes", date(2026, 11, 30)),
        ("mañana", date(2026, 11, 26)),
        ("pasado mañana", date(2026, 11, 27)),
        ("10 de diciembre", date(2026, 12, 10)),
    ],
)
def test_expressions(expression: str, expected: date) -> None:
    assert resolve_not_before(expression, now=FIXED_NOW, tz=NEW_YORK) == expected


@pytest.mark.parametrize(
    "expression",
    ["", "   ", None, "maybe later", "whenever", "today", "idk", "1", "at 3", "por la mañana"],
)
def test_nothing_usable(expression) -> None:
    assert resolve_not_before(expression, now=FIXED_NOW, tz=NEW_YORK) is None


def test_results_are_always_in_the_future() -> None:
    for expression in ["next week", "monday", "the 25th", "nov 25", "tomorrow", "in 1 day"]:
        result = resolve_not_before(expression, now=FIXED_NOW, tz=NEW_YORK)
        assert result is None or result > FIXED_NOW.date(), expression


def test_today_is_the_clinic_date_not_the_server_date() -> None:
    # 02:30 UTC on the 26th is still the evening of the 25th in New York.
    late_evening = datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc)
    assert clinic_today(late_evening, NEW_YORK) == date(2026, 11, 25)
    assert resolve_not_before("tomorrow", now=late_evening, tz=NEW_YORK) == date(2026, 11, 26)


def test_timezone_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_TIMEZONE", "Pacific/Auckland")
    # 10:00 in New York is already the next day in Auckland.
    assert clinic_today(FIXED_NOW) == date(2026, 11, 26)
    monkeypatch.delenv("CLINIC_TIMEZONE")
    assert clinic_today(FIXED_NOW) == date(2026, 11, 25)


def test_naive_now_is_taken_as_clinic_time() -> None:
    naive = datetime(2026, 11, 25, 10, 0)
    assert resolve_not_before("tomorrow", now=naive, tz=ZoneInfo("America/Chicago")) == date(
        2026, 11, 26
    )


def test_format_date() -> None:
    assert format_date(date(2026, 12, 7)) == "Mon Dec 7"
    assert format_date(date(2026, 12, 7), "es") == "lun 7 dic"
