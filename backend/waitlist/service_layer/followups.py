"""Follow-up queues for the front desk. "Booked, enter in schedule": every filled slot until
someone has copied it into the practice's own schedule, oldest first, highlighted once overdue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from waitlist.adapters.repository import paged
from waitlist.config import Settings
from waitlist.domain.model import Actor, DomainError
from waitlist.service_layer import views
from waitlist.service_layer.staff import Conflict, NotFound
from waitlist.service_layer.unit_of_work import UnitOfWork

BOOKED = sa.text(
    """
    SELECT c.id AS cancellation_id, c.slot_start, c.slot_end, c.location, c.closed_at AS booked_at,
           pr.name AS provider_name, p.id AS patient_id, p.display_name, p.phone,
           w.current_appointment_at AS old_appointment_at
    FROM cancellations c
    JOIN providers pr ON pr.id = c.provider_id
    JOIN offers o ON o.cancellation_id = c.id AND o.state = 'accepted'
    JOIN patients p ON p.id = o.patient_id
    JOIN waitlist_entries w ON w.id = o.entry_id
    WHERE c.status = 'filled' AND c.schedule_entered_at IS NULL
    ORDER BY c.closed_at, c.id
    """
)


def booked_to_enter(
    uow: UnitOfWork, now: datetime, settings: Settings, limit: int, offset: int
) -> dict[str, Any]:
    with uow:
        result, total = paged(uow.session, BOOKED, limit, offset)
        rows = result.all()
    items = [
        {
            "cancellation_id": row.cancellation_id,
            "patient_id": row.patient_id,
            "name": row.display_name,
            "phone": row.phone,  # staff call or look the patient up: the full number, never logged
            "provider": row.provider_name,
            "location": row.location,
            "slot_start": row.slot_start.isoformat(),
            "slot_end": row.slot_end.isoformat(),
            "old_appointment_at": row.old_appointment_at.isoformat()
            if row.old_appointment_at
            else None,
            "booked_at": row.booked_at.isoformat(),
            "overdue": row.booked_at <= now - settings.schedule_entry_due,
        }
        for row in rows
    ]
    return views.page(items, total, offset)


def mark_entered(uow: UnitOfWork, cancellation_id: int, now: datetime, staff: str) -> dict:
    with uow:
        cancellation = uow.cancellations.get_for_update(cancellation_id)
        if cancellation is None:
            raise NotFound("cancellation", cancellation_id)
        try:
            changed = cancellation.mark_entered_in_schedule(now, staff)
        except DomainError as exc:
            raise Conflict(str(exc), field="status") from exc
        if changed:
            uow.events.record(
                "booking_entered_in_schedule",
                Actor.STAFF,
                now,
                actor_ref=staff,
                cancellation_id=cancellation_id,
            )
        uow.commit()
        return {
            "cancellation_id": cancellation_id,
            "schedule_entered_at": cancellation.schedule_entered_at.isoformat()
            if cancellation.schedule_entered_at
            else None,
            "schedule_entered_by": cancellation.schedule_entered_by,
        }


# "Call back": every handoff staff have not closed; emergencies first, then the oldest.
CALLBACKS = sa.text(
    """
    SELECT e.id, e.occurred_at, e.data->>'reason' AS reason, e.data->>'text' AS text,
           p.id AS patient_id, p.display_name, p.phone
    FROM audit_events e
    JOIN patients p ON p.id = e.patient_id
    WHERE e.kind = 'handoff_requested'
      AND NOT EXISTS (SELECT 1 FROM callbacks_done d WHERE d.handoff_event_id = e.id)
    ORDER BY (e.data->>'reason') = 'emergency' DESC, e.occurred_at, e.id
    """
)
# One statement: two clicks on "done" at once record one closing, the first.
CLOSE_CALLBACK = sa.text(
    """
    INSERT INTO callbacks_done (handoff_event_id, done_at, done_by, note)
    SELECT id, :now, :by, :note FROM audit_events WHERE id = :id AND kind = 'handoff_requested'
    ON CONFLICT (handoff_event_id) DO NOTHING
    RETURNING handoff_event_id
    """
)


def callbacks(uow: UnitOfWork, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        result, total = paged(uow.session, CALLBACKS, limit, offset)
        rows = result.all()
    items = [
        {
            "id": row.id,
            "requested_at": row.occurred_at.isoformat(),
            "reason": row.reason,
            "emergency": row.reason == "emergency",
            "last_message": row.text,
            "patient_id": row.patient_id,
            "name": row.display_name,
            "phone": row.phone,
        }
        for row in rows
    ]
    return views.page(items, total, offset)


def close_callback(
    uow: UnitOfWork, handoff_event_id: int, note: str | None, now: datetime, staff: str
) -> dict[str, Any]:
    with uow:
        closed = uow.session.execute(
            CLOSE_CALLBACK, {"id": handoff_event_id, "now": now, "by": staff, "note": note}
        ).scalar_one_or_none()
        row = uow.session.execute(
            sa.text(
                "SELECT done_at, done_by, note FROM callbacks_done WHERE handoff_event_id = :id"
            ),
            {"id": handoff_event_id},
        ).one_or_none()
        if row is None:
            raise NotFound("call-back", handoff_event_id)
        if closed is not None:
            uow.events.record(
                "callback_done",
                Actor.STAFF,
                now,
                actor_ref=staff,
                data={"handoff_event_id": handoff_event_id},
            )
        uow.commit()
    return {
        "id": handoff_event_id,
        "done_at": row.done_at.isoformat(),
        "done_by": row.done_by,
        "note": row.note,
    }
