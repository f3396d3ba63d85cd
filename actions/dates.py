"""Turns a patient's "try me next week" into the date to check back from.

The result is the `not_before` date of `/replies/defer`, in the clinic's time
zone. Rules for the common phrasings come first because dateparser reads
"next week" as "today + 7 days" while patients mean "from Monday"; dateparser
covers the long tail ("December 10", "10 de diciembre", "12/10").
"""

from __future__ import annotations

import calendar
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from re import Pattern
from zoneinfo import ZoneInfo

import dateparser

DEFAULT_CLINIC_TIMEZONE = "America/New_York"

# (first day, last day) of what the patient named; "after X" means last day + 1.
Span = tuple[date, date]


def clinic_timezone() -> ZoneInfo:
    """The clinic's zone decides what "tomorrow" means, not the server's."""
    return ZoneInfo(os.environ.get("CLINIC_TIMEZONE") or DEFAULT_CLINIC_TIMEZONE)


def clinic_today(now: datetime | None = None, tz: ZoneInfo | None = None) -> date:
    """Today's date in the clinic's time zone."""
    zone = tz or clinic_timezone()
    moment = now or datetime.now(zone)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone).date()


def normalise(text: str) -> str:
    """Lower case, no accents ("próxima" == "proxima"), single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("’", "'")
    return re.sub(r"\s+", " ", plain).strip()


NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "un": 1,
    "uno": 1,
    "una": 1,
    "two": 2,
    "dos": 2,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "un par de": 2,
    "three": 3,
    "tres": 3,
    "a few": 3,
    "few": 3,
    "unos": 3,
    "unas": 3,
    "unos cuantos": 3,
    "four": 4,
    "cuatro": 4,
    "five": 5,
    "cinco": 5,
    "six": 6,
    "seis": 6,
    "seven": 7,
    "siete": 7,
    "eight": 8,
    "ocho": 8,
    "nine": 9,
    "nueve": 9,
    "ten": 10,
    "diez": 10,
    "eleven": 11,
    "once": 11,
    "twelve": 12,
    "doce": 12,
}
_NUMBER = (
    r"(\d{1,2}|"
    + "|".join(sorted((re.escape(word) for word in NUMBER_WORDS), key=len, reverse=True))
    + r")"
)

WEEKDAYS = {
    "monday": 0,
    "mon": 0,
    "lunes": 0,
    "tuesday": 1,
    "tues": 1,
    "tue": 1,
    "martes": 1,
    "wednesday": 2,
    "weds": 2,
    "wed": 2,
    "miercoles": 2,
    "thursday": 3,
    "thurs": 3,
    "thur": 3,
    "thu": 3,
    "jueves": 3,
    "friday": 4,
    "fri": 4,
    "viernes": 4,
    "saturday": 5,
    "sat": 5,
    "sabado": 5,
    "sunday": 6,
    "sun": 6,
    "domingo": 6,
}
_WEEKDAY = r"(" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")s?"

MONTHS = {
    "january": 1,
    "jan": 1,
    "enero": 1,
    "february": 2,
    "feb": 2,
    "febrero": 2,
    "march": 3,
    "mar": 3,
    "marzo": 3,
    "april": 4,
    "apr": 4,
    "abril": 4,
    "may": 5,
    "mayo": 5,
    "june": 6,
    "jun": 6,
    "junio": 6,
    "july": 7,
    "jul": 7,
    "julio": 7,
    "august": 8,
    "aug": 8,
    "agosto": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "septiembre": 9,
    "setiembre": 9,
    "october": 10,
    "oct": 10,
    "octubre": 10,
    "november": 11,
    "nov": 11,
    "noviembre": 11,
    "december": 12,
    "dec": 12,
    "diciembre": 12,
}
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(\d{1,2})(?:st|nd|rd|th|ro|do|vo|to|o)?"

# "after the 15th", "despues del 15", "not until after christmas": the span's end + 1.
_AFTER = re.compile(
    r"(?:\bafter|\bdespues(?: de(?:l| la| el)?)?|\bpasado(?: el)?)\s*(?:the\s+|el\s+|la\s+)?$"
)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_span(year: int, month: int) -> Span:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _next_day_of_month(today: date, day_of_month: int) -> date | None:
    """The next date strictly after today that has this day of month."""
    if not 1 <= day_of_month <= 31:
        return None
    candidate_month = date(today.year, today.month, 1)
    for _ in range(13):
        last = calendar.monthrange(candidate_month.year, candidate_month.month)[1]
        if day_of_month <= last:
            candidate = candidate_month.replace(day=day_of_month)
            if candidate > today:
                return candidate
        candidate_month = _add_months(candidate_month, 1)
    return None


def _month_day(today: date, month: int, day_of_month: int) -> date | None:
    """This year's date, or next year's when it has passed."""
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day_of_month)
        except ValueError:
            return None
        if candidate > today:
            return candidate
    return None


def _part_of_month(today: date, part: str, month: int) -> date | None:
    """ "mid December" -> Dec 15; "early" -> the 1st; "late" -> the 20th."""
    if part.startswith(("mid", "middle", "mediados")):
        day_of_month = 15
    elif part.startswith(("late", "end", "finales", "fin")):
        day_of_month = 20
    else:
        day_of_month = 1
    return _month_day(today, month, day_of_month)


def _single(day: date | None) -> Span | None:
    return (day, day) if day else None


def _weekday_span(today: date, name: str, next_week: bool) -> Span:
    target = WEEKDAYS[name]
    if next_week:
        # "next friday": the Friday of next week, as most people mean it.
        day = _week_start(today) + timedelta(days=7 + target)
    else:
        ahead = (target - today.weekday()) % 7 or 7
        day = today + timedelta(days=ahead)
    return day, day


def _in_units(today: date, amount: int, unit: str) -> Span:
    if unit.startswith(("day", "dia")):
        day = today + timedelta(days=amount)
    elif unit.startswith(("week", "semana")):
        day = today + timedelta(weeks=amount)
    else:
        day = _add_months(today, amount)
    return day, day


@dataclass(frozen=True)
class _Rule:
    pattern: Pattern[str]
    resolve: Callable[[re.Match, date], Span | None]


def _rule(regex: str, resolve: Callable[[re.Match, date], Span | None]) -> _Rule:
    return _Rule(re.compile(regex), resolve)


_NEXT = r"(?:next|the next|el proximo|la proxima|proximo|proxima)"
_UNIT = r"(days?|weeks?|months?|dias?|semanas?|mes|meses)"

# Most specific first: "the week after next" must win over "next week".
RULES: list[_Rule] = [
    _rule(
        r"\b(?:the )?week after next\b|\bla semana despues de la proxima\b",
        lambda m, t: (_week_start(t) + timedelta(14), _week_start(t) + timedelta(20)),
    ),
    _rule(
        r"\b(?:the )?day after tomorrow\b|\bpasado manana\b",
        lambda m, t: _single(t + timedelta(2)),
    ),
    _rule(
        rf"\b(?:in|en|within|dentro de)\s+(?:about\s+|like\s+|unos?\s+|unas\s+)?"
        rf"{_NUMBER}\s+(?:more\s+)?{_UNIT}\b",
        lambda m, t: _in_units(t, _number(m.group(1)), m.group(2)),
    ),
    _rule(
        rf"\b{_NUMBER}\s+{_UNIT}\s+(?:from now|from today|out|later|mas)\b",
        lambda m, t: _in_units(t, _number(m.group(1)), m.group(2)),
    ),
    _rule(
        rf"\b(?:not this week|this week is bad|(?:next|nxt) (?:week|wk)|{_NEXT} semana|"
        r"la semana que viene|esta semana no|semana proxima|la otra semana)\b",
        lambda m, t: (_week_start(t) + timedelta(7), _week_start(t) + timedelta(13)),
    ),
    _rule(
        rf"\b(?:(?:next|nxt) (?:month|mnth|mo)|{_NEXT} mes|el mes que viene|mes que viene|"
        r"el mes proximo|el otro mes)\b",
        lambda m, t: _month_span(_add_months(t, 1).year, _add_months(t, 1).month),
    ),
    _rule(
        r"\b(?:end of (?:the |this )?month|fin de mes|finales de mes|el fin del mes)\b",
        lambda m, t: _single(_month_span(t.year, t.month)[1]),
    ),
    _rule(
        r"\b(?:this |the |el )?(?:weekend|fin de semana)\b",
        lambda m, t: (
            t + timedelta((5 - t.weekday()) % 7 or 7),
            t + timedelta((5 - t.weekday()) % 7 or 7) + timedelta(1),
        ),
    ),
    # "por la manana" is "in the morning", not "tomorrow".
    _rule(r"\b(?:tomorrow|tmrw|tmr|(?<!la )manana)\b", lambda m, t: _single(t + timedelta(1))),
    _rule(
        rf"\b(?:next year|{_NEXT} ano|el ano que viene)\b",
        lambda m, t: _single(date(t.year + 1, 1, 1)),
    ),
    _rule(
        r"\b(?:christmas|xmas|navidad)\b",
        lambda m, t: _single(_month_day(t, 12, 25)),
    ),
    _rule(
        r"\b(?:new year'?s?|ano nuevo)\b",
        lambda m, t: _single(_month_day(t, 1, 1)),
    ),
    _rule(
        rf"\b{_NEXT} {_WEEKDAY}\b|\b{_WEEKDAY} (?:que viene|next week)\b",
        lambda m, t: _weekday_span(t, m.group(1) or m.group(2), next_week=True),
    ),
    _rule(
        rf"\b(early|beginning of|start of|principios de|mid|mid-|middle of|mediados de|"
        rf"late|end of|finales de|fin de) ?{_MONTH}(?!\w)",
        lambda m, t: _single(_part_of_month(t, m.group(1), MONTHS[m.group(2)])),
    ),
    _rule(
        rf"\b{_MONTH} (?:the )?{_ORDINAL}\b",
        lambda m, t: _single(_month_day(t, MONTHS[m.group(1)], int(m.group(2)))),
    ),
    _rule(
        rf"\b{_ORDINAL} (?:de |of )?{_MONTH}(?!\w)",
        lambda m, t: _single(_month_day(t, MONTHS[m.group(2)], int(m.group(1)))),
    ),
    _rule(
        r"\b(\d{1,2})/(\d{1,2})\b",
        lambda m, t: _single(_month_day(t, int(m.group(1)), int(m.group(2)))),
    ),
    _rule(
        rf"^(?:maybe |like |about |try me |unos |unas )?{_NUMBER}\s+(?:more\s+)?{_UNIT}$",
        lambda m, t: _in_units(t, _number(m.group(1)), m.group(2)),
    ),
    _rule(
        rf"\b(?:this |on |el |este )?{_WEEKDAY}\b",
        lambda m, t: _weekday_span(t, m.group(1), next_week=False),
    ),
    _rule(
        r"\b(?:the|el|del|after|despues de) (\d{1,2})(?:st|nd|rd|th)?\b"
        r"|\b(\d{1,2})(?:st|nd|rd|th)\b",
        lambda m, t: _single(_next_day_of_month(t, int(m.group(1) or m.group(2)))),
    ),
]


_LOOKS_LIKE_DATE = re.compile(rf"\d{{1,4}}[/.-]\d{{1,2}}|(?<!\w){_MONTH}(?!\w)")


def _span_from_rules(text: str, today: date) -> tuple[Span, int] | None:
    for rule in RULES:
        match = rule.pattern.search(text)
        if match:
            span = rule.resolve(match, today)
            if span:
                return span, match.start()
    return None


def _dateparser_date(text: str, today: date, tz: ZoneInfo) -> date | None:
    """Long tail: absolute dates in English or Spanish."""
    base = datetime(today.year, today.month, today.day, 12, 0)
    parsed = dateparser.parse(
        text,
        languages=["en", "es"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": base,
            "DATE_ORDER": "MDY",
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_AS_TIMEZONE_AWARE": False,
            "TIMEZONE": str(tz),
            "TO_TIMEZONE": str(tz),
        },
    )
    return parsed.date() if parsed else None


def resolve_not_before(
    expression: str | None,
    now: datetime | None = None,
    tz: ZoneInfo | None = None,
) -> date | None:
    """The first day the patient wants to hear from us again, or None.

    "next week" -> Monday of next week; "after the 15th" -> the 16th;
    "in two weeks" -> today + 14 days; "next month" -> the 1st. The result is
    always after today, since a defer to the past or today means nothing.
    """
    if not expression or not expression.strip():
        return None
    zone = tz or clinic_timezone()
    today = clinic_today(now, zone)
    text = normalise(expression)

    found = _span_from_rules(text, today)
    if found:
        (first, last), start = found
        result = last + timedelta(days=1) if _AFTER.search(text[:start]) else first
    else:
        after = re.match(r"^(?:after|despues de(?:l)?)\s+(.*)$", text)
        candidate = after.group(1) if after else text
        if not _LOOKS_LIKE_DATE.search(candidate):
            # dateparser reads a bare "1" or "at 3" as a month; only hand it real dates.
            return None
        parsed = _dateparser_date(candidate, today, zone)
        if parsed is None:
            return None
        result = parsed + timedelta(days=1) if after else parsed
    return result if result > today else None


def format_date(day: date, language: str | None = None) -> str:
    """Short SMS date in the patient's language: "Mon Dec 7" / "lun 7 dic"."""
    if (language or "en").lower().startswith("es"):
        weekdays = ["lun", "mar", "mie", "jue", "vie", "sab", "dom"]
        months = [
            "ene",
            "feb",
            "mar",
            "abr",
            "may",
            "jun",
            "jul",
            "ago",
            "sep",
            "oct",
            "nov",
            "dic",
        ]
        return f"{weekdays[day.weekday()]} {day.day} {months[day.month - 1]}"
    return f"{calendar.day_abbr[day.weekday()]} {calendar.month_abbr[day.month]} {day.day}"
