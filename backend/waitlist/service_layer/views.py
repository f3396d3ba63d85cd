"""JSON shapes returned by the APIs, built from domain objects."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from waitlist.adapters.repository import OfferHistoryRow
from waitlist.adapters.transcripts import TranscriptLine
from waitlist.domain import model

# Two languages, a dozen words each: small enough to keep here rather than pull in a locale library.
_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mie", "jue", "vie", "sab", "dom"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
}


def slot_date_text(moment: datetime, tz: ZoneInfo, language: str) -> str:
    local = moment.astimezone(tz)
    lang = language if language in _DAYS else "en"
    day, month = _DAYS[lang][local.weekday()], _MONTHS[lang][local.month - 1]
    return f"{day} {month} {local.day}" if lang == "en" else f"{day} {local.day} {month}"


def slot_time_text(moment: datetime, tz: ZoneInfo, language: str) -> str:
    local = moment.astimezone(tz)
    if language == "es":
        return local.strftime("%H:%M")
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def provider_view(p: model.Provider) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "provider_type": p.provider_type}


def patient_view(p: model.Patient) -> dict[str, Any]:
    return {
        "id": p.id,
        "phone": p.phone,
        "display_name": p.display_name,
        "preferred_language": p.preferred_language,
        "consent_source": p.consent_source,
        "consented_at": iso(p.consented_at),
        "opted_out": p.opted_out,
        "opted_out_at": iso(p.opted_out_at),
        "wrong_number": p.wrong_number_at is not None,
        "wrong_number_at": iso(p.wrong_number_at),
    }


def entry_view(e: model.WaitlistEntry, score_parts: dict[str, int] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": e.id,
        "patient_id": e.patient_id,
        "status": e.status.value,
        "provider_ids": e.provider_ids or [],
        "provider_type": e.provider_type,
        "location": e.location,
        "current_appointment_at": iso(e.current_appointment_at),
        "not_before": iso(e.not_before),
        "not_after": iso(e.not_after),
        "days_of_week": [model.WEEKDAYS[d] for d in (e.days_of_week or [])],
        "earliest_time": e.earliest_time.strftime("%H:%M") if e.earliest_time else None,
        "latest_time": e.latest_time.strftime("%H:%M") if e.latest_time else None,
        "urgent": e.urgent,
        "manual_boost": e.manual_boost,
        "notes": e.notes,
        "joined_at": iso(e.joined_at),
    }
    if score_parts is not None:
        view["score"] = sum(score_parts.values())
        view["score_parts"] = score_parts
    return view


def offer_view(o: model.Offer) -> dict[str, Any]:
    return {
        "id": o.id,
        "patient_id": o.patient_id,
        "entry_id": o.entry_id,
        "state": o.state.value,
        "created_at": iso(o.created_at),
        "sent_at": iso(o.sent_at),
        "expires_at": iso(o.expires_at),
        "responded_at": iso(o.responded_at),
        "closed_at": iso(o.closed_at),
        "close_reason": o.close_reason,
        "delivery_status": o.delivery_status,
    }


def offer_history_view(row: OfferHistoryRow, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.id,
        "cancellation_id": row.cancellation_id,
        "state": row.state.value,
        "provider_name": row.provider_name,
        "location": row.location,
        "slot_start": iso(row.slot_start.astimezone(tz)),
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "responded_at": iso(row.responded_at),
        "closed_at": iso(row.closed_at),
        "close_reason": row.close_reason,
        "delivery_status": row.delivery_status,
    }


def transcript_line_view(line: TranscriptLine) -> dict[str, Any]:
    return {
        "at": iso(line.at),
        "direction": line.direction,
        "text": line.text,
        "intent": line.intent,
    }


def cancellation_view(c: model.Cancellation) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": c.status.value,
        "provider_id": c.provider_id,
        "location": c.location,
        "slot_start": iso(c.slot_start),
        "slot_end": iso(c.slot_end),
        "filled_by_patient_id": c.filled_by_patient_id,
        "created_at": iso(c.created_at),
        "closed_at": iso(c.closed_at),
        "batch_reason": c.batch_reason,
        "offers": [offer_view(o) for o in c.offers],
    }


def patient_offer_view(
    offer: model.Offer,
    cancellation: model.Cancellation,
    language: str,
    tz: ZoneInfo,
    hold_minutes: int,
    now: datetime,
) -> dict[str, Any]:
    """What the assistant may tell the patient about their offer: date, time, place, nothing else."""
    minutes_left = None
    if offer.is_pending and offer.expires_at is not None:
        minutes_left = max(0, int((offer.expires_at - now).total_seconds() // 60))
    return {
        "offer_id": offer.id,
        "cancellation_id": cancellation.id,
        "state": offer.state.value,
        "slot_start": cancellation.slot_start.astimezone(tz).isoformat(),
        "slot_end": cancellation.slot_end.astimezone(tz).isoformat(),
        "slot_date": slot_date_text(cancellation.slot_start, tz, language),
        "slot_time": slot_time_text(cancellation.slot_start, tz, language),
        "location": cancellation.location,
        "hold_minutes": hold_minutes,
        "expires_at": iso(offer.expires_at.astimezone(tz)) if offer.expires_at else None,
        "minutes_left": minutes_left,
    }


def page(items: list[dict[str, Any]], total: int, offset: int) -> dict[str, Any]:
    """Every list in the staff API: `{items, total, next}`, where `next` is the offset of the
    following page, or None on the last one."""
    following = offset + len(items)
    return {"items": items, "total": total, "next": following if following < total else None}
