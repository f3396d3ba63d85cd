"""The front desk's board: open slots, soonest first, each seat with its patient, the offer's state,
where its text is (queued, sent, delivered, failed), the hold's end, and what happens next.

A read model (cosmicpython's "views"): one query for the seats, then the "why" of each open slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sms_common.phones import mask_phone
from waitlist.config import Settings
from waitlist.service_layer import staff
from waitlist.service_layer.unit_of_work import UnitOfWork

SEATS = sa.text(
    """
    SELECT c.id AS cancellation_id, c.location, c.slot_start, c.slot_end, c.created_at,
           c.batch_reason,
           pr.id AS provider_id, pr.name AS provider_name,
           o.id AS offer_id, o.patient_id, p.display_name, p.phone, o.state::text AS state,
           o.sent_at, o.expires_at, ob.status AS text_status, ob.delivery_status
    FROM cancellations c
    JOIN providers pr ON pr.id = c.provider_id
    LEFT JOIN offers o ON o.cancellation_id = c.id
    LEFT JOIN patients p ON p.id = o.patient_id
    LEFT JOIN outbox ob ON ob.offer_id = o.id AND ob.kind = 'offer'
    WHERE c.status = 'open'
    ORDER BY c.slot_start, c.id, o.state <> 'pending', o.id
    """
)


def text_state(text_status: str | None, delivery_status: str | None) -> str | None:
    """Where the offer's text is, in the four words staff need."""
    if text_status is None:
        return None
    if text_status == "failed" or delivery_status in ("failed", "undelivered"):
        return "failed"
    if delivery_status == "delivered":
        return "delivered"
    if text_status == "sent":
        return "sent"
    return "queued"  # pending, sending, or dropped before it left


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def board(uow: UnitOfWork, now: datetime, settings: Settings) -> dict[str, Any]:
    slots: dict[int, dict[str, Any]] = {}
    with uow:
        rows = uow.session.execute(SEATS).all()
    for row in rows:
        slot = slots.setdefault(
            row.cancellation_id,
            {
                "id": row.cancellation_id,
                "provider": {"id": row.provider_id, "name": row.provider_name},
                "location": row.location,
                "slot_start": _iso(row.slot_start),
                "slot_end": _iso(row.slot_end),
                "entered_at": _iso(row.created_at),
                # why the latest batch had its size and hold (BATCH_MODE=adaptive sizes each one)
                "batch_reason": row.batch_reason,
                "seats": [],
            },
        )
        if row.offer_id is None:
            continue
        left = (row.expires_at - now).total_seconds() if row.expires_at else None
        slot["seats"].append(
            {
                "offer_id": row.offer_id,
                "patient_id": row.patient_id,
                "name": row.display_name,
                "phone": mask_phone(row.phone),
                "state": row.state,
                "text": text_state(row.text_status, row.delivery_status),
                "sent_at": _iso(row.sent_at),
                "expires_at": _iso(row.expires_at),
                "seconds_left": max(0, int(left))
                if left is not None and row.state == "pending"
                else None,
            }
        )
    for slot in slots.values():
        slot["next"] = staff.explain_cancellation(uow, slot["id"], now, settings)["summary"]
    return {"now": now.isoformat(), "slots": list(slots.values())}
