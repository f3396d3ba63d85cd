"""What each domain event writes, in the transaction that raised it (cosmicpython, chapter 8).

The aggregate says what happened; this table turns it into outbox rows (texts to send) and audit rows,
so no use case can forget a notice or an audit line, and nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from waitlist.domain import model
from waitlist.domain.model import Actor

if TYPE_CHECKING:
    from waitlist.service_layer.unit_of_work import UnitOfWork


def _offer_refs(offer: model.Offer) -> dict[str, Any]:
    return {
        "patient_id": offer.patient_id,
        "cancellation_id": offer.cancellation_id,
        "offer_id": offer.id,
    }


def offer_made(event: model.OfferMade, uow: UnitOfWork) -> None:
    offer = event.offer
    assert offer.id is not None  # the unit of work flushes before handling
    uow.outbox.add("offer", offer.id, offer.created_at)
    uow.events.record(
        "offer_created",
        Actor.SYSTEM,
        offer.created_at,
        entry_id=offer.entry_id,
        data={"score": event.score},
        **_offer_refs(offer),
    )


def offer_sent(event: model.OfferSent, uow: UnitOfWork) -> None:
    offer = event.offer
    assert offer.sent_at is not None
    uow.events.record("sms_offer_sent", Actor.SYSTEM, offer.sent_at, **_offer_refs(offer))


def offer_closed(event: model.OfferClosed, uow: UnitOfWork) -> None:
    offer = event.offer
    assert offer.id is not None
    when = offer.closed_at or offer.sent_at or offer.created_at
    uow.outbox.drop_pending_offer_messages([offer.id], f"offer {offer.state.value} before sending")
    uow.events.record(
        f"offer_{offer.state.value}",
        Actor.SYSTEM,
        when,
        data={"reason": offer.close_reason},
        **_offer_refs(offer),
    )
    if event.notice is not None:
        uow.outbox.add(event.notice.value, offer.id, offer.sent_at or when)
    if event.seat_freed:
        uow.pending_seats.add(offer.cancellation_id)


def notice_due(event: model.NoticeDue, uow: UnitOfWork) -> None:
    offer = event.offer
    assert offer.id is not None and offer.sent_at is not None
    uow.outbox.add(event.notice.value, offer.id, offer.sent_at)
    uow.events.record(
        "offer_sent_after_close",
        Actor.SYSTEM,
        offer.sent_at,
        data={"notice": event.notice.value},
        **_offer_refs(offer),
    )


def cancellation_filled(event: model.CancellationFilled, uow: UnitOfWork) -> None:
    offer = event.offer
    assert offer.responded_at is not None
    entry = uow.waitlist.get(offer.entry_id, for_update=True)
    if entry is not None:
        entry.fulfil(offer.responded_at)
    uow.events.record(
        "cancellation_filled",
        Actor.PATIENT,
        offer.responded_at,
        entry_id=offer.entry_id,
        data={"late": event.late},
        **_offer_refs(offer),
    )


def batch_sized(event: model.BatchSized, uow: UnitOfWork) -> None:
    plan = event.plan
    uow.events.record(
        "offer_batch_sized",
        Actor.SYSTEM,
        event.occurred_at,
        cancellation_id=event.cancellation_id,
        data={
            "size": plan.size,
            "hold_minutes": plan.hold.total_seconds() / 60,
            "offers_made": event.offers_made,
            "reason": plan.reason,
        },
    )


Handler = Callable[[Any, "UnitOfWork"], None]

AT_COMMIT: dict[type[model.Event], Handler] = {
    model.OfferMade: offer_made,
    model.OfferSent: offer_sent,
    model.OfferClosed: offer_closed,
    model.NoticeDue: notice_due,
    model.CancellationFilled: cancellation_filled,
    model.BatchSized: batch_sized,
}


def handle(event: model.Event, uow: UnitOfWork) -> None:
    AT_COMMIT[type(event)](event, uow)
