"""The modelled patient: whether and when they answer an offer, and what they say.

Each answer is drawn from a random stream named by (seed, patient, slot), so that a patient
offered the same slot under two policies gives the same answer at the same delay: the policies are
compared on the same patients' behaviour, not on luck.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from simulation.scenario import Scenario, Step


@dataclass(frozen=True)
class Answer:
    at: datetime
    kind: str  # accept | decline | defer | opt_out
    defer_days: int = 0


def _step(steps: list[Step], value: float) -> float:
    for step in steps:
        if step.below is None or value < step.below:
            return step.factor
    return steps[-1].factor


def _time_of_day(moment: datetime, scenario: Scenario) -> str:
    clock = moment.time()
    if clock >= scenario.evening_from:
        return "evening"
    return "morning" if clock < time(12, 0) else "afternoon"


def _in_quiet_hours(clock: time, scenario: Scenario) -> bool:
    start, end = scenario.quiet_start, scenario.quiet_end
    if start > end:  # quiet hours span midnight
        return clock >= start or clock < end
    return start <= clock < end


def accept_probability(
    scenario: Scenario,
    received_at: datetime,
    slot_start: datetime,
    current_appointment_at: datetime | None,
    offers_this_week: int,
    tz: ZoneInfo,
) -> float:
    """P(yes | the patient answers)."""
    lead_hours = (slot_start - received_at).total_seconds() / 3600
    # no current appointment: as keen as those whose appointment is a month or more away
    days_sooner = (
        (current_appointment_at - slot_start).total_seconds() / 86400
        if current_appointment_at is not None
        else 60.0
    )
    p = scenario.accept_base
    p *= _step(scenario.lead_factors, lead_hours)
    p *= scenario.time_of_day_factors[_time_of_day(received_at.astimezone(tz), scenario)]
    p *= _step(scenario.sooner_factors, days_sooner)
    p *= scenario.weekly_fatigue ** max(0, offers_this_week - 1)
    return min(0.95, p)


def answer(
    scenario: Scenario,
    seed: int,
    patient_index: int,
    language: str,
    slot_key: int,
    received_at: datetime,
    slot_start: datetime,
    current_appointment_at: datetime | None,
    offers_this_week: int,
    tz: ZoneInfo,
) -> Answer | None:
    """What the patient does with an offer received at `received_at` (None: never answers)."""
    rng = random.Random(f"answer:{scenario.name}:{seed}:{patient_index}:{slot_key}")
    answers = scenario.answer_probability * scenario.language_answer_factor.get(language, 1.0)
    # draw every number whatever the branch, so one patient's stream never shifts another's
    u_answer, u_kind, u_split, u_defer = rng.random(), rng.random(), rng.random(), rng.random()
    delay = rng.lognormvariate(math.log(scenario.reply_median_minutes), scenario.reply_sigma)
    if u_answer >= answers:
        return None
    local = received_at.astimezone(tz)
    if local.time() >= scenario.evening_from:
        delay *= scenario.evening_slowdown
    at = received_at + timedelta(minutes=delay)
    at_local = at.astimezone(tz)
    if _in_quiet_hours(at_local.time(), scenario):
        # asleep: they answer in the morning, a while after waking
        day = at_local.date()
        if at_local.time() >= scenario.quiet_start:
            day += timedelta(days=1)
        woke = datetime.combine(day, scenario.quiet_end, tzinfo=tz)
        at = woke + timedelta(minutes=delay % 60)
    p_yes = accept_probability(
        scenario, received_at, slot_start, current_appointment_at, offers_this_week, tz
    )
    if u_kind < p_yes:
        return Answer(at, "accept")
    split = scenario.no_split
    total = sum(split.values())
    if u_split < split["decline"] / total:
        return Answer(at, "decline")
    if u_split < (split["decline"] + split["defer"]) / total:
        low, high = scenario.defer_days
        return Answer(at, "defer", defer_days=low + int(u_defer * (high - low + 1)))
    return Answer(at, "opt_out")
