"""Use cases for front-desk staff: providers, patients, the waitlist and cancellations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import Actor, DomainError
from waitlist.service_layer import offering, views
from waitlist.service_layer.unit_of_work import UnitOfWork


class NotFound(Exception):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} not found")


class Conflict(Exception):
    """The request clashes with existing data (e.g. a phone number already registered)."""

    def __init__(
        self, message: str, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.details = details or {}


class SlotTaken(Conflict):
    """The same provider's slot at the same start is already open or filled."""

    def __init__(self, existing_id: int | None) -> None:
        super().__init__(
            f"this slot is already entered as cancellation {existing_id}",
            field="slot_start",
            details={"cancellation_id": existing_id},
        )


def create_provider(
    uow: UnitOfWork, name: str, provider_type: str, now: datetime, staff: str
) -> dict[str, Any]:
    with uow:
        provider = model.Provider(name=name, provider_type=provider_type, created_at=now)
        uow.providers.add(provider)
        uow.flush()
        uow.events.record("provider_created", Actor.STAFF, now, actor_ref=staff)
        uow.commit()
        return views.provider_view(provider)


def list_providers(uow: UnitOfWork, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        providers, total = uow.providers.list(limit, offset)
        return views.page([views.provider_view(p) for p in providers], total, offset)


def create_patient(
    uow: UnitOfWork,
    phone: str,
    display_name: str,
    preferred_language: str,
    consent_source: str,
    now: datetime,
    staff: str,
) -> dict[str, Any]:
    with uow:
        if uow.patients.by_phone(phone) is not None:
            raise Conflict("a patient with this phone number already exists", field="phone")
        patient = model.Patient(
            phone=phone,
            display_name=display_name,
            preferred_language=preferred_language,
            consent_source=consent_source,
            consented_at=now,
            created_at=now,
        )
        uow.patients.add(patient)
        uow.flush()
        uow.events.record(
            "patient_created", Actor.STAFF, now, actor_ref=staff, patient_id=patient.id
        )
        uow.commit()
        return views.patient_view(patient)


def correct_patient_number(
    uow: UnitOfWork, patient_id: int, phone: str, now: datetime, staff: str
) -> dict[str, Any]:
    """Staff fixed a record whose number reached the wrong person: a new number, or this one
    confirmed. Until then nothing is ever texted to it, whatever the number texts us."""
    with uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise NotFound("patient", patient_id)
        if phone != patient.phone and uow.patients.by_phone(phone) is not None:
            raise Conflict("a patient with this phone number already exists", field="phone")
        patient.correct_number(phone, now)
        uow.events.record(
            "patient_number_corrected", Actor.STAFF, now, actor_ref=staff, patient_id=patient_id
        )
        uow.commit()
    return get_patient(uow, patient_id)


def messaging_health(uow: UnitOfWork) -> dict[str, Any]:
    """Whether texts are leaving: the circuit breaker's state and the outbox depth."""
    with uow:
        health = uow.messaging.get()
        return {
            "paused": health.paused,
            "paused_since": views.iso(health.paused_since),
            "consecutive_failures": health.consecutive_failures,
            "last_error": health.last_error,
            "outbox_depth": uow.outbox.pending_count(),
        }


def get_patient(uow: UnitOfWork, patient_id: int) -> dict[str, Any]:
    with uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise NotFound("patient", patient_id)
        return views.patient_view(patient)


# The patient page shows this much of the past; older texts stay in the tracker store
HISTORY_OFFERS = 50
HISTORY_TEXTS = 100


def patient_history(
    uow: UnitOfWork, patient_id: int, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The patient page: the record, every waitlist entry with the score an active one has right
    now, the offers made (newest first) and the last texts of the SMS conversation."""
    with uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise NotFound("patient", patient_id)
        entries = []
        for entry in uow.waitlist.for_patient(patient_id):
            active = entry.status == model.EntryStatus.ACTIVE
            parts = (
                uow.waitlist.score_parts(entry.id or 0, settings.scoring, now) if active else None
            )
            entries.append(views.entry_view(entry, parts))
        offers = [
            views.offer_history_view(row, settings.clinic_timezone)
            for row in uow.offers.history_for_patient(patient_id, HISTORY_OFFERS)
        ]
        available = uow.transcripts.available()
        texts = uow.transcripts.last_texts(patient.phone, HISTORY_TEXTS) if available else []
        return {
            "patient": views.patient_view(patient),
            "entries": entries,
            "offers": offers,
            "transcript": {
                "available": available,
                "texts": [views.transcript_line_view(line) for line in texts],
            },
        }


def search_patients(uow: UnitOfWork, text: str, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        patients, total = uow.patients.search(text.strip(), limit, offset)
        return views.page([views.patient_view(p) for p in patients], total, offset)


@dataclass
class EntryInput:
    """Waitlist fields as staff send them; None means "not given"."""

    provider_ids: list[int] | None = None
    provider_type: str | None = None
    location: str | None = None
    current_appointment_at: datetime | None = None
    not_before: date | None = None
    not_after: date | None = None
    days_of_week: list[int] | None = None
    earliest_time: time | None = None
    latest_time: time | None = None
    urgent: bool | None = None
    manual_boost: int | None = None
    notes: str | None = None


def _apply(
    entry: model.WaitlistEntry, data: EntryInput, fields: set[str], settings: Settings
) -> None:
    for name in fields:
        value = getattr(data, name)
        if name == "manual_boost":
            entry.set_boost(value or 0, settings.scoring)
        elif name in ("provider_ids", "days_of_week"):
            # an empty list means "any", stored as NULL so the selection query can use its indexes
            setattr(entry, name, sorted(set(value)) if value else None)
        elif name == "urgent":
            entry.urgent = bool(value)
        else:
            setattr(entry, name, value)
    if entry.not_before and entry.not_after and entry.not_after < entry.not_before:
        raise DomainError("not_after must not be before not_before")
    if entry.earliest_time and entry.latest_time and entry.latest_time <= entry.earliest_time:
        raise DomainError("latest_time must be after earliest_time")


def add_to_waitlist(
    uow: UnitOfWork,
    patient_id: int,
    data: EntryInput,
    fields: set[str],
    now: datetime,
    settings: Settings,
    staff: str,
) -> dict[str, Any]:
    with uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise NotFound("patient", patient_id)
        for provider_id in data.provider_ids or []:
            if uow.providers.get(provider_id) is None:
                raise NotFound("provider", provider_id)
        entry = model.WaitlistEntry(patient_id=patient_id, joined_at=now, updated_at=now)
        _apply(entry, data, fields, settings)
        uow.waitlist.add(entry)
        uow.flush()
        uow.events.record(
            "entry_created",
            Actor.STAFF,
            now,
            actor_ref=staff,
            patient_id=patient_id,
            entry_id=entry.id,
        )
        uow.commit()
        assert entry.id is not None
        parts = uow.waitlist.score_parts(entry.id, settings.scoring, now)
        return views.entry_view(entry, parts)


def get_entry(uow: UnitOfWork, entry_id: int, now: datetime, settings: Settings) -> dict[str, Any]:
    with uow:
        entry = uow.waitlist.get(entry_id)
        if entry is None:
            raise NotFound("waitlist entry", entry_id)
        return views.entry_view(entry, uow.waitlist.score_parts(entry_id, settings.scoring, now))


def list_entries(
    uow: UnitOfWork, status: str | None, limit: int, offset: int, now: datetime, settings: Settings
) -> dict[str, Any]:
    with uow:
        entries, total = uow.waitlist.list(status, limit, offset)
        items = [
            views.entry_view(e, uow.waitlist.score_parts(e.id or 0, settings.scoring, now))
            for e in entries
        ]
        return views.page(items, total, offset)


def update_entry(
    uow: UnitOfWork,
    entry_id: int,
    data: EntryInput,
    fields: set[str],
    now: datetime,
    settings: Settings,
    staff: str,
) -> dict[str, Any]:
    with uow:
        entry = uow.waitlist.get(entry_id, for_update=True)
        if entry is None:
            raise NotFound("waitlist entry", entry_id)
        if entry.status != model.EntryStatus.ACTIVE:
            raise Conflict(f"waitlist entry {entry_id} is {entry.status.value}", field="status")
        for provider_id in data.provider_ids or []:
            if uow.providers.get(provider_id) is None:
                raise NotFound("provider", provider_id)
        _apply(entry, data, fields, settings)
        entry.updated_at = now
        uow.events.record(
            "entry_updated",
            Actor.STAFF,
            now,
            actor_ref=staff,
            patient_id=entry.patient_id,
            entry_id=entry.id,
            data={"fields": sorted(fields)},
        )
        uow.commit()
        return views.entry_view(entry, uow.waitlist.score_parts(entry_id, settings.scoring, now))


def remove_entry(
    uow: UnitOfWork, entry_id: int, now: datetime, settings: Settings, staff: str
) -> dict[str, Any]:
    with uow:
        entry = uow.waitlist.get(entry_id, for_update=True)
        if entry is None:
            raise NotFound("waitlist entry", entry_id)
        if entry.remove(now):
            uow.events.record(
                "entry_removed",
                Actor.STAFF,
                now,
                actor_ref=staff,
                patient_id=entry.patient_id,
                entry_id=entry.id,
            )
        uow.commit()
        return views.entry_view(entry, uow.waitlist.score_parts(entry_id, settings.scoring, now))


def create_cancellation(
    uow: UnitOfWork,
    provider_id: int,
    location: str,
    slot_start: datetime,
    slot_end: datetime,
    now: datetime,
    settings: Settings,
    staff: str,
) -> dict[str, Any]:
    """Record the open slot and start offering it at once."""
    model.validate_slot(slot_start, slot_end, now)
    with uow:
        if uow.providers.get(provider_id) is None:
            raise NotFound("provider", provider_id)
        stored = uow.cancellations.add_unless_slot_taken(
            model.Cancellation(
                provider_id=provider_id,
                location=location,
                slot_start=slot_start,
                slot_end=slot_end,
                created_at=now,
            )
        )
        if stored is None:
            raise SlotTaken(uow.cancellations.holding_slot(provider_id, slot_start))
        cancellation = stored
        uow.events.record(
            "cancellation_created",
            Actor.STAFF,
            now,
            actor_ref=staff,
            cancellation_id=cancellation.id,
        )
        uow.commit()
        cancellation_id = cancellation.id
    assert cancellation_id is not None
    offering.fill_seats(uow, cancellation_id, now, settings)
    return get_cancellation(uow, cancellation_id)


def get_cancellation(uow: UnitOfWork, cancellation_id: int) -> dict[str, Any]:
    with uow:
        cancellation = uow.cancellations.get(cancellation_id)
        if cancellation is None:
            raise NotFound("cancellation", cancellation_id)
        view = views.cancellation_view(cancellation)
        view["events"] = [
            {
                "kind": e["kind"],
                "actor": e["actor"],
                "occurred_at": views.iso(e["occurred_at"]),
                "offer_id": e["offer_id"],
                "patient_id": e["patient_id"],
            }
            for e in uow.events.for_cancellation(cancellation_id)
        ]
        return view


def list_cancellations(
    uow: UnitOfWork, status: str | None, limit: int, offset: int
) -> dict[str, Any]:
    with uow:
        cancellations, total = uow.cancellations.list(status, limit, offset)
        return views.page([views.cancellation_view(c) for c in cancellations], total, offset)


def abort_cancellation(
    uow: UnitOfWork, cancellation_id: int, now: datetime, staff: str
) -> dict[str, Any]:
    with uow:
        cancellation = uow.cancellations.get_for_update(cancellation_id)
        if cancellation is None:
            raise NotFound("cancellation", cancellation_id)
        try:
            cancellation.abort(now)  # its events queue the notices (handlers.py)
        except DomainError as exc:
            raise Conflict(str(exc), field="status") from exc
        uow.events.record(
            "cancellation_aborted",
            Actor.STAFF,
            now,
            actor_ref=staff,
            cancellation_id=cancellation_id,
        )
        uow.commit()
    return get_cancellation(uow, cancellation_id)


def list_events(uow: UnitOfWork, kind: str | None, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        events, total = uow.events.list(kind, limit, offset)
        items = [{**e, "occurred_at": views.iso(e["occurred_at"])} for e in events]
        return views.page(items, total, offset)


# How staff read each rule in "why": "3 hold another offer".
RULE_WORDS = {
    "provider": "do not match the provider",
    "opted_out": "opted out of texts",
    "location": "want another location",
    "current_appointment_not_later": "already have an appointment before it",
    "dates": "are outside their dates",
    "day_of_week": "do not want that weekday",
    "time_of_day": "do not want that time of day",
    "already_offered_this_slot": "were offered this slot already",
    "holds_another_offer": "hold another offer",
    "daily_cap": "reached today's text cap",
    "weekly_cap": "reached this week's text cap",
}


def explain_cancellation(
    uow: UnitOfWork, cancellation_id: int, now: datetime, settings: Settings
) -> dict[str, Any]:
    """Why a slot is, or is not, filling: what each eligibility rule excludes right now."""
    with uow:
        cancellation = uow.cancellations.get(cancellation_id)
        if cancellation is None:
            raise NotFound("cancellation", cancellation_id)
        provider = uow.providers.get(cancellation.provider_id)
        assert provider is not None  # foreign key
        slot = cancellation.slot(provider)
        found = uow.waitlist.explain_selection(
            cancellation, slot, settings.offering, settings.scoring, now
        )
        pending = len(cancellation.pending_offers())
        status = cancellation.status.value
    excluded = {rule: n for rule, n in found["excluded_by"].items() if n}
    reasons = ", ".join(
        f"{n} {RULE_WORDS[rule]}" for rule, n in sorted(excluded.items(), key=lambda kv: -kv[1])
    )
    if status != "open":
        summary = f"this slot is {status}"
    elif found["eligible_patients"]:
        eligible = found["eligible_patients"]
        summary = f"next seat refills from {eligible} eligible patient{'' if eligible == 1 else 's'}"
    elif not found["active_entries"]:
        summary = "nobody eligible: the waitlist is empty"
    else:
        summary = f"nobody eligible: {reasons}"
    return {
        "cancellation_id": cancellation_id,
        "status": status,
        "pending_offers": pending,
        **found,
        "summary": summary,
    }
