"""A scenario: every parameter of the modelled clinic and patients, read from one YAML file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True)
class Provider:
    name: str
    provider_type: str


@dataclass(frozen=True)
class LeadBand:
    """A share of cancellations whose lead time lies between two bounds (log-uniform inside)."""

    share: float
    min_hours: float
    max_hours: float


@dataclass(frozen=True)
class Step:
    """A factor that applies up to (and excluding) a bound; the last step has bound None."""

    below: float | None
    factor: float


@dataclass(frozen=True)
class Policy:
    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class Scenario:
    name: str
    # the clinic
    timezone: str
    start: date
    days: int
    location: str
    providers: list[Provider]
    slot_minutes: int
    clinic_open: time
    clinic_close: time
    working_days: list[int]
    contact_hours: str
    # the waitlist
    initial_patients: int
    joins_per_day: float
    languages: dict[str, float]
    provider_preference: dict[str, float]
    any_weekday_share: float
    weekdays_wanted: tuple[int, int]
    time_of_day: dict[str, float]
    current_appointment_days: tuple[float, float]
    no_current_appointment_share: float
    joined_days_ago: tuple[float, float]
    urgent_share: float
    # cancellations
    cancellations_per_day: float
    arrival_hours: tuple[float, float]
    lead_bands: list[LeadBand]
    # patients
    answer_probability: float
    language_answer_factor: dict[str, float]
    reply_median_minutes: float
    reply_sigma: float
    evening_from: time
    evening_slowdown: float
    quiet_start: time
    quiet_end: time
    accept_base: float
    lead_factors: list[Step]
    time_of_day_factors: dict[str, float]
    sooner_factors: list[Step]
    weekly_fatigue: float
    no_split: dict[str, float]
    defer_days: tuple[int, int]
    reads_notice: float
    # engine settings common to every policy (contact hours, caps, priors of the adaptive rule)
    engine_env: dict[str, str]
    policies: list[Policy]
    # the run
    seeds: int
    sweep_every_minutes: int
    workers: int
    replay_csv: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _time(text: str) -> time:
    hours, minutes = (int(part) for part in str(text).split(":"))
    return time(hours, minutes)


def _steps(rows: list[list[Any]]) -> list[Step]:
    return [Step(None if row[0] is None else float(row[0]), float(row[1])) for row in rows]


def _pair(value: list[Any]) -> tuple[float, float]:
    return float(value[0]), float(value[1])


def load(name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIOS / f"{name_or_path}.yaml"
    raw = yaml.safe_load(path.read_text())
    clinic, waitlist, arrivals = raw["clinic"], raw["waitlist"], raw["cancellations"]
    patients, accept, run = raw["patients"], raw["patients"]["accept"], raw["run"]
    opens, closes = (_time(t) for t in clinic["clinic_hours"].split("-"))
    quiet_start, quiet_end = (_time(t) for t in patients["quiet_hours"].split("-"))
    weekdays = waitlist["weekdays_wanted"]
    defer = patients["defer_days"]
    return Scenario(
        name=path.stem,
        timezone=clinic["timezone"],
        start=date.fromisoformat(str(clinic["start"])),
        days=int(clinic["days"]),
        location=clinic["location"],
        providers=[Provider(p["name"], p["type"]) for p in clinic["providers"]],
        slot_minutes=int(clinic["slot_minutes"]),
        clinic_open=opens,
        clinic_close=closes,
        working_days=[int(d) for d in clinic["working_days"]],
        contact_hours=clinic["contact_hours"],
        initial_patients=int(waitlist["initial_patients"]),
        joins_per_day=float(waitlist["joins_per_day"]),
        languages={k: float(v) for k, v in waitlist["languages"].items()},
        provider_preference={k: float(v) for k, v in waitlist["provider_preference"].items()},
        any_weekday_share=float(waitlist["any_weekday_share"]),
        weekdays_wanted=(int(weekdays[0]), int(weekdays[1])),
        time_of_day={k: float(v) for k, v in waitlist["time_of_day"].items()},
        current_appointment_days=_pair(waitlist["current_appointment_days"]),
        no_current_appointment_share=float(waitlist["no_current_appointment_share"]),
        joined_days_ago=_pair(waitlist["joined_days_ago"]),
        urgent_share=float(waitlist["urgent_share"]),
        cancellations_per_day=float(arrivals["per_day"]),
        arrival_hours=_pair(arrivals["arrival_hours"]),
        lead_bands=[
            LeadBand(float(b["share"]), float(b["min_hours"]), float(b["max_hours"]))
            for b in arrivals["lead_time"]
        ],
        answer_probability=float(patients["answer_probability"]),
        language_answer_factor={
            k: float(v) for k, v in patients.get("language_answer_factor", {}).items()
        },
        reply_median_minutes=float(patients["reply_minutes"]["median"]),
        reply_sigma=float(patients["reply_minutes"]["sigma"]),
        evening_from=_time(patients["evening"]["from"]),
        evening_slowdown=float(patients["evening"]["slowdown"]),
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        accept_base=float(accept["base"]),
        lead_factors=_steps(accept["lead_time_hours"]),
        time_of_day_factors={k: float(v) for k, v in accept["time_of_day"].items()},
        sooner_factors=_steps(accept["days_sooner"]),
        weekly_fatigue=float(accept["fatigue_per_offer_this_week"]),
        no_split={k: float(v) for k, v in patients["when_not_accepting"].items()},
        defer_days=(int(defer[0]), int(defer[1])),
        reads_notice=float(patients["reads_filled_notice"]),
        engine_env={k: str(v) for k, v in raw["engine"].items()},
        policies=[
            Policy(name, {k: str(v) for k, v in env.items()})
            for name, env in raw["policies"].items()
        ],
        seeds=int(run["seeds"]),
        sweep_every_minutes=int(run["sweep_every_minutes"]),
        workers=int(run["workers"]),
        replay_csv=raw.get("replay_csv"),
        raw=raw,
    )
