"""The outbox dispatcher, and what happens when Twilio reports a delivery.

An offer commits first, with an outbox row; only then is its text handed to the messenger. A crash
between the two loses nothing: the row is still pending and the next dispatch sends it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from waitlist.adapters.messenger import Messenger, OutboundMessage, SendError, mask_phone
from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import Actor
from waitlist.service_layer import offering, views
from waitlist.service_layer.clock import Clock
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=2)


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts + 1, 10)))


def dispatch_one(uow: UnitOfWork, messenger: Messenger, clock: Clock, settings: Settings) -> bool:
    """Send one due outbox message. Returns False when nothing was due."""
    refill: int | None = None
    with uow:
        now = clock.now()
        item = uow.outbox.next_due(now)
        if item is None:
            return False
        offer = uow.offers.get(item.offer_id)
        assert offer is not None
        patient = uow.patients.get(offer.patient_id)
        cancellation = uow.cancellations.get(offer.cancellation_id)
        assert patient is not None and cancellation is not None
        if patient.opted_out or (item.kind == "offer" and not offer.is_pending):
            uow.outbox.mark(item.id, "dropped", now, "no longer wanted")
            uow.commit()
            return True
        tz, language = settings.clinic_timezone, patient.preferred_language
        message = OutboundMessage(
            kind=item.kind,
            phone=patient.phone,
            language=language,
            offer_id=offer.id or 0,
            slot_date=views.slot_date_text(cancellation.slot_start, tz, language),
            slot_time=views.slot_time_text(cancellation.slot_start, tz, language),
            location=cancellation.location,
            hold_minutes=int(settings.offering.hold.total_seconds() // 60),
        )
        try:
            messenger.send(message)
        except SendError as exc:
            now = clock.now()
            log.warning(
                "sending %s %s to %s failed: %s", item.kind, item.id, mask_phone(patient.phone), exc
            )
            if not exc.permanent:
                uow.outbox.retry_later(item.id, now + backoff(item.attempts), exc.reason)
                uow.commit()
                return True
            uow.outbox.mark(item.id, "failed", now, exc.reason)
            if exc.carrier_opted_out and patient.opt_out(now):
                uow.events.record(
                    "patient_opted_out",
                    Actor.SYSTEM,
                    now,
                    patient_id=patient.id,
                    data={"reason": "carrier reports the number unsubscribed (21610)"},
                )
            if item.kind == "offer":
                refill = _fail_offer(uow, offer, now, exc.reason)
            uow.commit()
        else:
            now = clock.now()
            uow.outbox.mark(item.id, "sent", now)
            if item.kind == "offer":
                offer.mark_sent(now, settings.offering.hold)
            uow.events.record(
                f"sms_{item.kind}_sent",
                Actor.SYSTEM,
                now,
                patient_id=patient.id,
                cancellation_id=cancellation.id,
                offer_id=offer.id,
            )
            uow.commit()
    if refill is not None:
        offering.fill_seats(uow, refill, clock.now(), settings)
    return True


def _fail_offer(uow: UnitOfWork, offer: model.Offer, now: datetime, reason: str) -> int | None:
    """Mark an undeliverable offer failed; returns the cancellation whose seat is now free."""
    cancellation = uow.cancellations.get_for_update(offer.cancellation_id)
    assert cancellation is not None
    current = cancellation.offer(offer.id or 0)
    if not current.is_pending:
        return None
    cancellation.fail_offer(current.id or 0, now, reason)
    offering.notify_closed_offers(uow, [current], None, now)
    return cancellation.id


def dispatch_due(
    uow: UnitOfWork, messenger: Messenger, clock: Clock, settings: Settings, limit: int = 200
) -> int:
    sent = 0
    while sent < limit and dispatch_one(uow, messenger, clock, settings):
        sent += 1
    return sent


FAILED_STATUSES = ("undelivered", "failed")


def record_delivery_status(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_sid: str,
    status: str,
    error_code: str | None,
) -> str:
    """Apply a Twilio status callback. Returns what it did, for the log.

    Twilio tells us the MessageSid, not which offer the text carried; an offer is the only text we
    start with a hold, so a failure to a patient with a pending, already-sent offer fails that offer.
    """
    refill: int | None = None
    with uow:
        patient = uow.patients.by_phone(phone, for_update=True)
        if patient is None:
            return "unknown number"
        offer = uow.offers.current_for_patient(patient.id or 0)
        result = "recorded"
        if offer is not None and offer.is_pending and offer.sent_at is not None:
            offer.delivery_status = status
        if status in FAILED_STATUSES:
            uow.events.record(
                "sms_delivery_failed",
                Actor.SYSTEM,
                now,
                patient_id=patient.id,
                data={"message_sid": message_sid, "error_code": error_code},
            )
            if error_code == "21610" and patient.opt_out(now):
                uow.events.record(
                    "patient_opted_out",
                    Actor.SYSTEM,
                    now,
                    patient_id=patient.id,
                    data={"reason": "carrier reports the number unsubscribed (21610)"},
                )
            if offer is not None and offer.is_pending and offer.sent_at is not None:
                refill = _fail_offer(uow, offer, now, f"delivery {status} ({error_code or '-'})")
                result = "offer failed"
        uow.commit()
    if refill is not None:
        offering.fill_seats(uow, refill, now, settings)
    return result
