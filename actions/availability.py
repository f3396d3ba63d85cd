"""Reads days of week and time of day out of an availability message.

Deterministic on purpose: "not Fridays" must never become "Fridays". The
output matches `/replies/availability` (`days_of_week`, `time_of_day`,
`not_after`); the backend decides what to do with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from actions.dates import normalise, resolve_not_before

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

_DAY_WORDS = {
    "mon": ["monday", "mondays", "mon", "mons", "lunes"],
    "tue": ["tuesday", "tuesdays", "tues", "tue", "martes"],
    "wed": ["wednesday", "wednesdays", "weds", "wed", "miercoles"],
    "thu": ["thursday", "thursdays", "thurs", "thur", "thu", "jueves"],
    "fri": ["friday", "fridays", "fri", "fris", "viernes"],
    "sat": ["saturday", "saturdays", "sat", "sats", "sabado", "sabados"],
    "sun": ["sunday", "sundays", "sun", "suns", "domingo", "domingos"],
}
_GROUP_WORDS = {
    "weekdays": ALL_DAYS[:5],
    "weekday": ALL_DAYS[:5],
    "entre semana": ALL_DAYS[:5],
    "dias de semana": ALL_DAYS[:5],
    "week days": ALL_DAYS[:5],
    "weekends": ["sat", "sun"],
    "weekend": ["sat", "sun"],
    "fin de semana": ["sat", "sun"],
    "fines de semana": ["sat", "sun"],
    "any day": ALL_DAYS,
    "every day": ALL_DAYS,
    "cualquier dia": ALL_DAYS,
}
_TIME_WORDS = {
    "morning": [
        "morning",
        "mornings",
        "am",
        "a.m.",
        "early",
        "before noon",
        "before lunch",
        "la manana",
        "las mananas",
        "por las mananas",
        "temprano",
    ],
    "afternoon": ["afternoon", "afternoons", "after lunch", "midday", "tarde", "tardes"],
    "evening": [
        "evening",
        "evenings",
        "night",
        "nights",
        "after work",
        "after 5",
        "after 5pm",
        "after five",
        "noche",
        "noches",
    ],
    "any": ["any time", "anytime", "whenever", "cualquier hora", "a cualquier hora"],
}
_NEGATORS = {
    "not",
    "no",
    "never",
    "except",
    "excluding",
    "cant",
    "cannot",
    "can't",
    "dont",
    "don't",
    "doesnt",
    "doesn't",
    "nope",
    "nunca",
    "excepto",
    "menos",
    "sin",
    "ni",
    "avoid",
    "but",
}
# Words after a day that turn it down: "mondays don't work", "los lunes no".
_POST_NEGATORS = {
    "not",
    "no",
    "dont",
    "don't",
    "doesnt",
    "doesn't",
    "cant",
    "can't",
    "bad",
    "never",
}
_BUSY = re.compile(r"\b(?:i work|i'm working|im working|i have work|trabajo|estoy trabajando)\b")
# Start a fresh clause: what follows "only"/"pero" is said positively.
_CLAUSE_BREAK = re.compile(r"[,.;!?]+|\b(?:only|just|but only|pero|solo|solamente|unicamente)\b")


@dataclass(frozen=True)
class Availability:
    """What the patient said, in the reply API's terms."""

    days_of_week: list[str] | None = None
    time_of_day: str | None = None
    not_after: str | None = None

    def is_empty(self) -> bool:
        return not (self.days_of_week or self.time_of_day or self.not_after)

    def as_fields(self) -> dict[str, Any]:
        """Only the fields we understood; the backend keeps the rest as is."""
        fields: dict[str, Any] = {}
        if self.days_of_week:
            fields["days_of_week"] = self.days_of_week
        if self.time_of_day:
            fields["time_of_day"] = self.time_of_day
        if self.not_after:
            fields["not_after"] = self.not_after
        return fields


def _phrase_pattern(phrases: list[str]) -> re.Pattern:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(p) for p in ordered) + r")(?![\w])")


_DAY_PATTERN = _phrase_pattern(
    [w for words in _DAY_WORDS.values() for w in words] + list(_GROUP_WORDS)
)
_DAY_LOOKUP = {w: [day] for day, words in _DAY_WORDS.items() for w in words}
_DAY_LOOKUP.update(_GROUP_WORDS)
_TIME_PATTERN = _phrase_pattern([w for words in _TIME_WORDS.values() for w in words])
_TIME_LOOKUP = {w: period for period, words in _TIME_WORDS.items() for w in words}


def _mentions(clause: str, pattern: re.Pattern) -> list[tuple]:
    """(phrase, negated) for each mention in one clause."""
    found = []
    for match in pattern.finditer(clause):
        before = clause[: match.start()].split()
        after = clause[match.end() :].split()[:3]
        negated = (
            any(word in _NEGATORS for word in before)
            or any(word in _POST_NEGATORS for word in after)
            # "I work mornings now": busy then, so not available.
            or bool(_BUSY.search(" ".join(before)))
        )
        found.append((match.group(1), negated))
    return found


def _until_date(text: str, now: datetime | None, tz: ZoneInfo | None) -> str | None:
    """ "until Dec 20" / "hasta el 20": the last day they can come."""
    match = re.search(r"\b(?:until|till|til|through|thru|up to|hasta)\b\s+(.*)$", text)
    if not match:
        return None
    day = resolve_not_before(match.group(1), now=now, tz=tz)
    return day.isoformat() if day else None


def parse_availability(
    text: str | None, now: datetime | None = None, tz: ZoneInfo | None = None
) -> Availability:
    """Days, time of day and a last date from free text; empty if none found."""
    if not text:
        return Availability()
    plain = normalise(text).replace("’", "'")
    positive_days: set[str] = set()
    negative_days: set[str] = set()
    positive_times: list[str] = []

    for clause in _CLAUSE_BREAK.split(plain):
        if not clause or not clause.strip():
            continue
        for phrase, negated in _mentions(clause, _DAY_PATTERN):
            (negative_days if negated else positive_days).update(_DAY_LOOKUP[phrase])
        for phrase, negated in _mentions(clause, _TIME_PATTERN):
            period = _TIME_LOOKUP[phrase]
            # "not mornings" has no single time_of_day; the patient is asked again.
            if not negated and period not in positive_times:
                positive_times.append(period)

    days: list[str] | None = None
    if positive_days:
        days = [d for d in ALL_DAYS if d in positive_days and d not in negative_days]
    elif negative_days:
        days = [d for d in ALL_DAYS if d not in negative_days]
    if len(positive_times) > 1 and "any" in positive_times:
        # "any time after lunch": the specific part is what they mean.
        positive_times.remove("any")
    time_of_day = positive_times[0] if len(positive_times) == 1 else None
    return Availability(
        days_of_week=days or None,
        time_of_day=time_of_day,
        not_after=_until_date(plain, now, tz),
    )
