"""One simulated run: one policy, one seed, the real engine against PostgreSQL on a fake clock.

The loop is a discrete-event simulation: a heap of timed events (a patient joins, a slot is
cancelled, a patient answers, a hold runs out, the periodic sweep, a slot's offering cutoff).
Each event calls the product's own use cases (staff.create_cancellation, replies.accept, ...,
offering.sweep) with `now` set to the event's time, then the outbox dispatcher sends what is due
through a messenger that delivers at once and tells the modelled patients.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time as wallclock
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from simulation import patients as patient_model
from simulation.scenario import Policy, Scenario
from simulation.world import TIME_OF_DAY, CancellationSpec, PatientSpec, World, build
from waitlist.adapters import database
from waitlist.adapters.messenger import OutboundMessage
from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import DomainError
from waitlist.service_layer import dispatch, offering, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

WEEK = timedelta(days=7)
ENTRY_FIELDS = (
    "provider_ids",
    "provider_type",
    "current_appointment_at",
    "days_of_week",
    "earliest_time",
    "latest_time",
    "urgent",
)


@dataclass(frozen=True)
class Sent:
    at: datetime
    message: OutboundMessage


@dataclass
class InstantMessenger:
    """Delivers every text the moment it is sent, and keeps it with the simulated time."""

    clock: FakeClock
    sent: list[Sent] = field(default_factory=list)

    def send(self, message: OutboundMessage) -> None:
        self.sent.append(Sent(self.clock.now(), message))


@dataclass
class PatientState:
    spec: PatientSpec
    patient_id: int = 0
    latest_offer_id: int | None = None
    told_closed: set[int] = field(default_factory=set)  # offers they heard were taken/withdrawn
    offers_at: list[datetime] = field(default_factory=list)


@dataclass
class RunResult:
    scenario: str
    policy: str
    seed: int
    cancellations: int
    rejected: int
    filled: int
    filled_2h: int
    minutes_to_fill: list[float]
    texts: int
    offers: int
    accepted: int
    disappointed: int
    max_texts_patient_week: int
    by_language: dict[str, dict[str, int]]
    batch_sizes: list[int]
    batch_holds: list[float]
    wall_seconds: float


def settings_for(scenario: Scenario, policy: Policy) -> Settings:
    """The product's own settings path: the simulated policy is what BATCH_MODE etc. would give."""
    return Settings.from_env({**scenario.engine_env, **policy.env})


class Simulation:
    def __init__(self, engine: Engine, scenario: Scenario, policy: Policy, seed: int) -> None:
        self.scenario, self.policy, self.seed = scenario, policy, seed
        self.settings = settings_for(scenario, policy)
        self.tz = ZoneInfo(scenario.timezone)
        self.world: World = build(scenario, seed)
        self.clock = FakeClock(self.world.start)
        self.messenger = InstantMessenger(self.clock)
        self.uow = UnitOfWork(UnitOfWork.session_factory_for(engine))
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.order = itertools.count()
        self.patients: dict[str, PatientState] = {}
        self.provider_ids: dict[str, int] = {}
        self.slot_of: dict[int, CancellationSpec] = {}  # cancellation id -> spec
        self.read = 0  # messages already handed to the patients
        self.message_ids = itertools.count()
        self.disappointed = 0
        self.rejected = 0  # cancellations staff could not enter (the chair's slot twice)
        self.wakes: set[datetime] = set()

    # -- the event heap -----------------------------------------------------------------------

    def at(self, when: datetime, kind: str, payload: Any = None) -> None:
        heapq.heappush(self.events, (when, next(self.order), kind, payload))

    def wake(self, when: datetime) -> None:
        """A hold runs out then: one wake-up per moment, however many holds end at it."""
        if when not in self.wakes:
            self.wakes.add(when)
            self.at(when, "holds")

    # -- set-up ---------------------------------------------------------------------------------

    def setup(self) -> None:
        first = min([p.joined_at for p in self.world.patients] + [self.world.start])
        setup_time = first - timedelta(days=1)
        names = {p.name: p.provider_type for p in self.scenario.providers}
        for spec in self.world.cancellations:  # a replayed clinic may name other providers
            names.setdefault(spec.provider, "general")
        for name, kind in names.items():
            self.provider_ids[name] = staff.create_provider(
                self.uow, name, kind, setup_time, "sim"
            )["id"]
        self.join_all([p for p in self.world.patients if p.joined_at <= self.world.start])
        for spec in self.world.patients:
            if spec.joined_at > self.world.start:
                self.at(spec.joined_at, "join", spec)
        for spec in self.world.cancellations:
            self.at(spec.cancelled_at, "cancel", spec)
        # the periodic sweep, during contact hours (outside them it offers nothing anyway)
        hours = self.settings.offering.contact_hours
        step = timedelta(minutes=self.scenario.sweep_every_minutes)
        day = self.world.start.astimezone(self.tz).date()
        while True:
            moment = datetime.combine(day, hours.start, tzinfo=self.tz)
            if moment > self.world.end:
                break
            closes = datetime.combine(day, hours.end, tzinfo=self.tz)
            while moment < closes:
                if moment >= self.world.start:
                    self.at(moment, "sweep")
                moment += step
            day += timedelta(days=1)

    def join_all(self, specs: list[PatientSpec]) -> None:
        """The waitlist as it stood when the simulation starts, written in one transaction
        through the product's repositories (one use case per patient would only be slower)."""
        with self.uow:
            added = []
            for spec in specs:
                patient = model.Patient(
                    phone=spec.phone,
                    display_name=f"Patient {spec.index}",
                    preferred_language=spec.language,
                    consent_source="sim",
                    consented_at=spec.joined_at,
                    created_at=spec.joined_at,
                )
                self.uow.patients.add(patient)
                added.append((spec, patient))
            self.uow.flush()
            for spec, patient in added:
                assert patient.id is not None
                entry = model.WaitlistEntry(
                    patient_id=patient.id, joined_at=spec.joined_at, updated_at=spec.joined_at
                )
                data = self.entry_input(spec)
                for name in ENTRY_FIELDS:
                    if getattr(data, name) is not None:
                        setattr(entry, name, getattr(data, name))
                self.uow.waitlist.add(entry)
                self.patients[spec.phone] = PatientState(spec, patient_id=patient.id)
            self.uow.commit()

    def entry_input(self, spec: PatientSpec) -> staff.EntryInput:
        earliest, latest = TIME_OF_DAY[spec.time_of_day]
        return staff.EntryInput(
            provider_ids=sorted(self.provider_ids[n] for n in spec.provider_names)
            if spec.provider_names
            else None,
            provider_type=spec.provider_type,
            current_appointment_at=spec.current_appointment_at,
            days_of_week=spec.days_of_week,
            earliest_time=earliest,
            latest_time=latest,
            urgent=spec.urgent,
        )

    def join(self, spec: PatientSpec) -> None:
        """A patient joins during the run: the staff use cases, as the front desk would."""
        now = spec.joined_at
        created = staff.create_patient(
            self.uow, spec.phone, f"Patient {spec.index}", spec.language, "sim", now, "sim"
        )
        data = self.entry_input(spec)
        fields = {name for name in ENTRY_FIELDS if getattr(data, name) is not None}
        staff.add_to_waitlist(self.uow, created["id"], data, fields, now, self.settings, "sim")
        self.patients[spec.phone] = PatientState(spec, patient_id=created["id"])

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = wallclock.perf_counter()
        self.setup()
        while self.events:
            when, _, kind, payload = heapq.heappop(self.events)
            if when > self.world.end:
                break
            self.clock.set(when)
            getattr(self, f"on_{kind}")(when, payload)
            self.dispatch(when)
        return self.result(wallclock.perf_counter() - started)

    def on_join(self, now: datetime, spec: PatientSpec) -> None:
        self.join(spec)

    def on_cancel(self, now: datetime, spec: CancellationSpec) -> None:
        slot_end = spec.slot_start + timedelta(minutes=self.scenario.slot_minutes)
        try:
            view = staff.create_cancellation(
                self.uow,
                self.provider_ids[spec.provider],
                self.scenario.location,
                spec.slot_start,
                slot_end,
                now,
                self.settings,
                "sim",
            )
        except (staff.SlotTaken, DomainError):
            self.rejected += 1
            return  # the same chair's slot twice, or a slot already begun: staff would not enter it
        self.slot_of[view["id"]] = spec
        cutoff = self.settings.offering.offering_closes_at(spec.slot_start)
        self.at(cutoff, "cutoff", view["id"])

    def on_cutoff(self, now: datetime, cancellation_id: int) -> None:
        offering.fill_seats(self.uow, cancellation_id, now, self.settings)  # closes the slot

    def on_sweep(self, now: datetime, _: None) -> None:
        offering.sweep(self.uow, now, self.settings)

    def on_holds(self, now: datetime, _: None) -> None:
        self.wakes.discard(now)
        # the sweep's first step: expire the holds that ran out and give their seats away
        offering.expire_due_holds(self.uow, now, self.settings)
        offering.refill_freed_seats(self.uow, now, self.settings)

    def on_reply(self, now: datetime, payload: tuple[str, int, patient_model.Answer]) -> None:
        phone, offer_id, answer = payload
        patient = self.patients[phone]
        if patient.latest_offer_id != offer_id:
            return  # a newer offer came meanwhile: they answer that one
        if offer_id in patient.told_closed:
            if answer.kind != "accept":
                return  # told it is gone: nothing left to decline
            rng = random.Random(f"notice:{self.seed}:{phone}:{offer_id}")
            if rng.random() < self.scenario.reads_notice:
                return  # they read "just taken" before answering
        message_id = f"sim-{next(self.message_ids)}"
        language = patient.spec.language
        if answer.kind == "accept":
            outcome = replies.accept(self.uow, self.settings, now, phone, message_id, language)
            if outcome["outcome"] == "too_late":
                self.disappointed += 1
        elif answer.kind == "decline":
            replies.decline(self.uow, self.settings, now, phone, message_id, language)
        elif answer.kind == "defer":
            not_before = (now + timedelta(days=answer.defer_days)).astimezone(self.tz).date()
            replies.defer(self.uow, self.settings, now, phone, message_id, not_before, language)
        else:
            replies.opt_out(self.uow, self.settings, now, phone, message_id, language)

    # -- texts ----------------------------------------------------------------------------------

    def dispatch(self, now: datetime) -> None:
        dispatch.dispatch_due(self.uow, self.messenger, self.clock, self.settings, limit=100000)
        fresh = self.messenger.sent[self.read :]
        self.read = len(self.messenger.sent)
        offers = [s for s in fresh if s.message.kind == "offer"]
        slot_of_offer = self.offer_cancellations([s.message.offer_id for s in offers])
        for sent in fresh:
            patient = self.patients[sent.message.phone]
            if sent.message.kind != "offer":
                patient.told_closed.add(sent.message.offer_id)
                continue
            offer_id = sent.message.offer_id
            patient.latest_offer_id = offer_id
            patient.offers_at.append(sent.at)
            self.wake(sent.at + timedelta(minutes=sent.message.hold_minutes))
            spec = self.slot_of[slot_of_offer[offer_id]]
            this_week = sum(1 for t in patient.offers_at if t > sent.at - WEEK)
            answer = patient_model.answer(
                self.scenario,
                self.seed,
                patient.spec.index,
                patient.spec.language,
                spec.index,
                sent.at,
                spec.slot_start,
                patient.spec.current_appointment_at,
                this_week,
                self.tz,
            )
            if answer is not None:
                self.at(answer.at, "reply", (sent.message.phone, offer_id, answer))

    def offer_cancellations(self, offer_ids: list[int]) -> dict[int, int]:
        if not offer_ids:
            return {}
        with self.uow:
            rows = self.uow.session.execute(
                sa.text("SELECT id, cancellation_id FROM offers WHERE id = ANY(:ids)"),
                {"ids": offer_ids},
            ).all()
        return {row.id: row.cancellation_id for row in rows}

    # -- figures --------------------------------------------------------------------------------

    def result(self, wall_seconds: float) -> RunResult:
        with self.uow:
            session = self.uow.session
            slots = session.execute(
                sa.text("SELECT status::text AS status, created_at, closed_at FROM cancellations")
            ).all()
            offers = session.execute(
                sa.text(
                    "SELECT p.preferred_language AS language, o.state::text AS state"
                    " FROM offers o JOIN patients p ON p.id = o.patient_id"
                    " WHERE o.sent_at IS NOT NULL"
                )
            ).all()
            batches = session.execute(
                sa.text("SELECT data FROM audit_events WHERE kind = 'offer_batch_sized'")
            ).all()
        minutes = [
            (row.closed_at - row.created_at).total_seconds() / 60
            for row in slots
            if row.status == "filled"
        ]
        by_language: dict[str, dict[str, int]] = defaultdict(lambda: {"offers": 0, "accepted": 0})
        for row in offers:
            by_language[row.language]["offers"] += 1
            by_language[row.language]["accepted"] += row.state == "accepted"
        texts_by_phone: dict[str, list[datetime]] = defaultdict(list)
        for sent in self.messenger.sent:
            texts_by_phone[sent.message.phone].append(sent.at)
        return RunResult(
            scenario=self.scenario.name,
            policy=self.policy.name,
            seed=self.seed,
            cancellations=len(slots),
            rejected=self.rejected,
            filled=len(minutes),
            filled_2h=sum(1 for m in minutes if m <= 120),
            minutes_to_fill=sorted(minutes),
            texts=len(self.messenger.sent),
            offers=len(offers),
            accepted=sum(1 for row in offers if row.state == "accepted"),
            disappointed=self.disappointed,
            max_texts_patient_week=max(
                (most_in_a_week(times) for times in texts_by_phone.values()), default=0
            ),
            by_language={k: dict(v) for k, v in by_language.items()},
            batch_sizes=[int(row.data["size"]) for row in batches],
            batch_holds=[float(row.data["hold_minutes"]) for row in batches],
            wall_seconds=wall_seconds,
        )


def most_in_a_week(times: list[datetime]) -> int:
    """The most texts inside any 7-day window (two pointers over the sorted times)."""
    times = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= WEEK:
            first += 1
        best = max(best, last - first + 1)
    return best


def run_one(engine: Engine, scenario: Scenario, policy: Policy, seed: int) -> RunResult:
    database.empty_all_tables(engine)
    return Simulation(engine, scenario, policy, seed).run()
