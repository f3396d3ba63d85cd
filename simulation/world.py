"""The modelled clinic: the waitlist's patients and the cancellations, drawn from a seed.

Everything here depends on the seed alone, never on the policy, so that every policy meets the
same patients and the same cancellations (common random numbers: the differences between policies
are not drowned by the differences between draws).
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from simulation.scenario import Scenario

TIME_OF_DAY = {
    "morning": (None, time(12, 0)),
    "afternoon": (time(12, 0), None),
    "any": (None, None),
}


@dataclass(frozen=True)
class PatientSpec:
    index: int
    phone: str
    language: str
    joined_at: datetime
    # whom the entry will see
    provider_names: list[str] | None
    provider_type: str | None
    days_of_week: list[int] | None
    time_of_day: str
    current_appointment_at: datetime | None
    urgent: bool


@dataclass(frozen=True)
class CancellationSpec:
    index: int
    provider: str
    slot_start: datetime
    cancelled_at: datetime


@dataclass(frozen=True)
class World:
    start: datetime  # the simulated clock starts here
    end: datetime  # and stops here (every slot has started)
    patients: list[PatientSpec]
    cancellations: list[CancellationSpec]


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    names = list(shares)
    return rng.choices(names, weights=[shares[n] for n in names])[0]


def _patient(
    scenario: Scenario, rng: random.Random, index: int, joined_at: datetime
) -> PatientSpec:
    preference = _pick(rng, scenario.provider_preference)
    provider_names: list[str] | None = None
    provider_type: str | None = None
    if preference == "named":
        # usually their own provider, sometimes two
        count = 1 if rng.random() < 0.7 else 2
        provider_names = [p.name for p in rng.sample(scenario.providers, count)]
    elif preference == "type":
        provider_type = rng.choice(sorted({p.provider_type for p in scenario.providers}))
    days = None
    if rng.random() >= scenario.any_weekday_share:
        low, high = scenario.weekdays_wanted
        days = sorted(rng.sample(scenario.working_days, rng.randint(low, high)))
    appointment = None
    if rng.random() >= scenario.no_current_appointment_share:
        low_days, high_days = scenario.current_appointment_days
        appointment = joined_at + timedelta(days=rng.uniform(low_days, high_days))
    return PatientSpec(
        index=index,
        phone=f"+1202555{index:04d}",
        language=_pick(rng, scenario.languages),
        joined_at=joined_at,
        provider_names=provider_names,
        provider_type=provider_type,
        days_of_week=days,
        time_of_day=_pick(rng, scenario.time_of_day),
        current_appointment_at=appointment,
        urgent=rng.random() < scenario.urgent_share,
    )


def _slots_from(scenario: Scenario, moment: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
    """The first `count` slot starts of the clinic's schedule at or after `moment`."""
    local = moment.astimezone(tz)
    step = timedelta(minutes=scenario.slot_minutes)
    day: date = local.date()
    found: list[datetime] = []
    while len(found) < count:
        if day.weekday() in scenario.working_days:
            slot = datetime.combine(day, scenario.clinic_open, tzinfo=tz)
            last = datetime.combine(day, scenario.clinic_close, tzinfo=tz) - step
            while slot <= last and len(found) < count:
                if slot >= local:
                    found.append(slot)
                slot += step
        day += timedelta(days=1)
    return found


def _slot_after(
    scenario: Scenario, rng: random.Random, moment: datetime, lead: timedelta, tz: ZoneInfo
) -> datetime:
    """A slot about `lead` after `moment`: one of the next few slots of the schedule (a lead
    that ends at night or on a weekend would otherwise always land on the first morning slot)."""
    spread = max(1, min(8, int(lead / timedelta(hours=2))))
    return rng.choice(_slots_from(scenario, moment + lead, tz, spread))


def _lead_time(scenario: Scenario, rng: random.Random) -> timedelta:
    weights = [band.share for band in scenario.lead_bands]
    band = rng.choices(scenario.lead_bands, weights=weights)[0]
    hours = math.exp(rng.uniform(math.log(band.min_hours), math.log(band.max_hours)))
    return timedelta(hours=hours)


def build(scenario: Scenario, seed: int) -> World:
    rng = random.Random(f"world:{scenario.name}:{seed}")
    tz = ZoneInfo(scenario.timezone)
    start = datetime.combine(scenario.start, time(0, 0), tzinfo=tz)
    patients: list[PatientSpec] = []
    for index in range(scenario.initial_patients):
        low, high = scenario.joined_days_ago
        joined = start - timedelta(days=rng.uniform(low, high))
        patients.append(_patient(scenario, rng, index, joined))
    # new entries arrive through the span (a Poisson process)
    moment = start
    horizon = start + timedelta(days=scenario.days)
    while scenario.joins_per_day > 0:
        moment += timedelta(days=rng.expovariate(scenario.joins_per_day))
        if moment >= horizon:
            break
        patients.append(_patient(scenario, rng, len(patients), moment))
    if scenario.replay_csv:
        cancellations = replay(scenario.replay_csv, tz)
        start = min(start, min(c.cancelled_at for c in cancellations) - timedelta(hours=1))
    else:
        cancellations = []
        arrival = start
        low_hour, high_hour = scenario.arrival_hours
        rate_per_hour = scenario.cancellations_per_day / (high_hour - low_hour)
        while True:
            arrival += timedelta(hours=rng.expovariate(rate_per_hour))
            local = arrival.astimezone(tz)
            hour = local.hour + local.minute / 60
            if hour < low_hour or hour >= high_hour:
                # nobody cancels at night here: jump to the next morning's first hour
                day = local.date() + (timedelta(days=1) if hour >= high_hour else timedelta(0))
                arrival = datetime.combine(day, time(int(low_hour)), tzinfo=tz)
                continue
            if arrival >= horizon:
                break
            provider = rng.choice(scenario.providers).name
            slot = _slot_after(scenario, rng, arrival, _lead_time(scenario, rng), tz)
            cancellations.append(CancellationSpec(len(cancellations), provider, slot, arrival))
    end = max(c.slot_start for c in cancellations) + timedelta(minutes=1)
    return World(start=start, end=end, patients=patients, cancellations=cancellations)


def replay(path: str, tz: ZoneInfo) -> list[CancellationSpec]:
    """A clinic's own past cancellations: columns provider, slot_start, cancelled_at (ISO 8601;
    a time without an offset is read in the clinic's time zone)."""

    def moment(text: str) -> datetime:
        value = datetime.fromisoformat(text.strip())
        return value if value.tzinfo else value.replace(tzinfo=tz)

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    found = [
        CancellationSpec(
            0, row["provider"].strip(), moment(row["slot_start"]), moment(row["cancelled_at"])
        )
        for row in rows
    ]
    found.sort(key=lambda c: c.cancelled_at)
    return [
        CancellationSpec(i, c.provider, c.slot_start, c.cancelled_at) for i, c in enumerate(found)
    ]
