"""The outbox dispatcher, and what happens when Twilio reports a delivery.

An offer commits first, with an outbox row; only then is its text handed to the messenger, in three
short steps so that no transaction or row lock is held while Rasa and Twilio work:

1. lease: one statement marks the row `sending` until a lease runs out, and the text is composed;
2. send: no transaction open; the row's `ref` makes the send idempotent in the connector's ledger,
   so a crash between sending and recording (the lease runs out, another attempt takes over) never
   texts the same offer twice;
3. record: the result is applied to the aggregate (the hold starts now) in a new transaction.

Failures are told apart: a per-number error fails the offer (and frees the seat); anything else
(Twilio 5xx or 429, a timeout, Rasa or the action server down) is retried with backoff and counts
toward the circuit breaker, which pauses all offering while texts cannot leave.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sms_common.phones import mask_phone
from waitlist import metrics
from waitlist.adapters.messenger import Messenger, OutboundMessage, SendError
from waitlist.adapters.repository import OutboxItem, ref_to_outbox_id
from waitlist.config import Settings
from waitlist.domain.model import Actor
from waitlist.service_layer import offering, views
from waitlist.service_layer.clock import Clock
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(seconds=30)
CARRIER_OPT_OUT = "21610"


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s ... at most 30 s: an offer's minutes matter more than Twilio's load."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(max(attempts, 1), 10)))


@dataclass(frozen=True)
class Leased:
    item: OutboxItem
    message: OutboundMessage
    patient_id: int


def dispatch_one(uow: UnitOfWork, messenger: Messenger, clock: Clock, settings: Settings) -> bool:
    """Send one due outbox message. Returns False when nothing was due."""
    leased = _lease(uow, clock.now(), settings)
    if leased is None:
        return False
    if leased is True:
        return True  # handled without sending (dropped or postponed)
    try:
        messenger.send(leased.message)
    except SendError as error:
        outcome = "refused" if error.permanent else "retry"
        metrics.SENDS.labels(leased.item.kind, outcome).inc()
        _record_failure(uow, leased, error, clock.now(), settings)
    else:
        metrics.SENDS.labels(leased.item.kind, "sent").inc()
        _record_sent(uow, leased, clock.now(), settings)
    offering.refill_freed_seats(uow, clock.now(), settings)
    return True


def dispatch_due(
    uow: UnitOfWork, messenger: Messenger, clock: Clock, settings: Settings, limit: int = 200
) -> int:
    sent = 0
    while sent < limit and dispatch_one(uow, messenger, clock, settings):
        sent += 1
    return sent


def _lease(uow: UnitOfWork, now: datetime, settings: Settings) -> Leased | bool | None:
    policy = settings.offering
    with uow:
        item = uow.outbox.claim_next(now, settings.send_lease)
        if item is None:
            return None
        offer = uow.offers.get(item.offer_id)
        assert offer is not None
        patient = uow.patients.get(offer.patient_id)
        cancellation = uow.cancellations.get(offer.cancellation_id)
        assert patient is not None and cancellation is not None
        reason = None
        if not patient.may_be_texted:
            reason = "the patient must not be texted"
        elif item.kind == "offer" and not offer.is_pending:
            reason = "offer closed before sending"
        elif item.kind != "offer" and cancellation.slot_start <= now:
            reason = "notice about a slot that has begun"
        if reason is not None:
            uow.outbox.drop(item.id, reason)
            uow.commit()
            return True
        if not policy.contact_hours.is_open(now, policy.timezone):
            # contact hours are enforced when the text would leave, not only when it was queued
            opening = policy.contact_hours.next_opening(now, policy.timezone)
            uow.outbox.postpone(item.id, opening, "outside contact hours")
            uow.commit()
            return True
        tz, language = settings.clinic_timezone, patient.preferred_language
        message = OutboundMessage(
            kind=item.kind,
            ref=item.ref,
            phone=patient.phone,
            language=language,
            offer_id=offer.id or 0,
            slot_date=views.slot_date_text(cancellation.slot_start, tz, language),
            slot_time=views.slot_time_text(cancellation.slot_start, tz, language),
            location=cancellation.location,
            hold_minutes=int((offer.hold or policy.hold).total_seconds() // 60),
        )
        uow.commit()
    return Leased(item, message, offer.patient_id)


def _record_sent(uow: UnitOfWork, leased: Leased, now: datetime, settings: Settings) -> None:
    item = leased.item
    with uow:
        if item.kind == "offer":
            # lock order as in a claim: the cancellation first, then its outbox rows
            offer = uow.offers.get(item.offer_id)
            assert offer is not None
            cancellation = uow.cancellations.get_for_update(offer.cancellation_id)
            assert cancellation is not None
            cancellation.record_sent(item.offer_id, now, settings.offering.hold)
        else:
            uow.events.record(
                f"sms_{item.kind}_sent", Actor.SYSTEM, now, patient_id=leased.patient_id
            )
        uow.outbox.mark_sent(item.id, now)
        before = uow.messaging.record_success(now)
        uow.commit()
    if before.paused:
        log.warning("texts are leaving again: offering resumed")


def _record_failure(
    uow: UnitOfWork, leased: Leased, error: SendError, now: datetime, settings: Settings
) -> None:
    item = leased.item
    log.warning(
        "sending %s %s to %s failed (%s): %s",
        item.kind,
        item.id,
        mask_phone(leased.message.phone),
        "permanent" if error.permanent else "will retry",
        error.reason,
    )
    with uow:
        if not error.permanent:
            health = uow.messaging.record_failure(now, error.reason, settings.failures_to_pause)
            uow.outbox.retry_later(item.id, now + backoff(item.attempts), error.reason)
            uow.commit()
            if health.paused and health.paused_since == now:
                log.error(
                    "%s sends failed in a row: offering paused until texts leave again (%s)",
                    health.consecutive_failures,
                    error.reason,
                )
            return
        # a per-number error: Twilio itself works, so the breaker resets
        offer = uow.offers.get(item.offer_id)
        assert offer is not None
        cancellation = uow.cancellations.get_for_update(offer.cancellation_id)
        assert cancellation is not None
        patient = uow.patients.get(offer.patient_id)
        assert patient is not None
        if error.code == CARRIER_OPT_OUT and patient.opt_out(now):
            uow.events.record(
                "patient_opted_out",
                Actor.SYSTEM,
                now,
                patient_id=patient.id,
                data={"reason": "carrier reports the number unsubscribed (21610)"},
            )
        current = cancellation.offer(item.offer_id)
        if item.kind == "offer" and current.is_pending and not current.was_sent:
            cancellation.fail_offer(current.id or 0, now, f"Twilio refused: {error.code or '-'}")
        uow.outbox.mark_failed(item.id, error.reason, error.code)
        uow.messaging.record_success(now)
        uow.commit()


FAILED_STATUSES = ("undelivered", "failed")


def record_delivery_status(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    ref: str | None,
    message_sid: str,
    status: str,
    error_code: str | None,
) -> str:
    """Apply a Twilio status callback to the exact message it reports. Returns what it did.

    The message is found by the `ref` our StatusCallback URL carries (or by the MessageSid recorded
    with it), never by phone number: a report about a reply or a notice leaves offers alone, and a
    replayed or out-of-order report changes nothing.
    """
    with uow:
        item_id = ref_to_outbox_id(ref)
        item = uow.outbox.get(item_id) if item_id is not None else None
        if item is None:
            item = uow.outbox.by_message_sid(message_sid)
        if item is None:
            return "not an outbox message"
        offer = uow.offers.get(item.offer_id)
        assert offer is not None
        # lock order as in a claim: the cancellation first, then the outbox row
        cancellation = uow.cancellations.get_for_update(offer.cancellation_id)
        assert cancellation is not None
        item = uow.outbox.get(item.id, for_update=True)
        assert item is not None
        if not uow.outbox.advance_delivery(item.id, message_sid, status):
            return "stale or repeated report"
        result = "recorded"
        current = cancellation.offer(item.offer_id)
        if item.kind == "offer" and current.is_pending:
            current.delivery_status = status
        if status in FAILED_STATUSES:
            uow.events.record(
                "sms_delivery_failed",
                Actor.SYSTEM,
                now,
                patient_id=offer.patient_id,
                offer_id=offer.id,
                data={"kind": item.kind, "message_sid": message_sid, "error_code": error_code},
            )
            patient = uow.patients.get(offer.patient_id)
            assert patient is not None
            if error_code == CARRIER_OPT_OUT and patient.opt_out(now):
                uow.events.record(
                    "patient_opted_out",
                    Actor.SYSTEM,
                    now,
                    patient_id=patient.id,
                    data={"reason": "carrier reports the number unsubscribed (21610)"},
                )
            if item.kind == "offer" and current.is_pending:
                cancellation.fail_offer(
                    current.id or 0, now, f"delivery {status} ({error_code or '-'})"
                )
                result = "offer failed"
        uow.commit()
    offering.refill_freed_seats(uow, now, settings)
    return result
