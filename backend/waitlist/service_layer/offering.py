"""The offering engine: fill a slot's free seats, expire holds, close slots that start too soon.

Every function opens its own unit of work and is safe to run in several processes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import Actor
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def notify_closed_offers(
    uow: UnitOfWork, offers: Iterable[model.Offer], notice_kind: str | None, now: datetime
) -> None:
    """Record closed offers; queue a notice for each patient who had already received the offer."""
    closed = list(offers)
    uow.outbox.drop_pending_offer_messages([o.id for o in closed if o.id is not None], now)
    for offer in closed:
        uow.events.record(
            f"offer_{offer.state.value}",
            Actor.SYSTEM,
            now,
            patient_id=offer.patient_id,
            cancellation_id=offer.cancellation_id,
            offer_id=offer.id,
            data={"reason": offer.close_reason},
        )
        if notice_kind and offer.sent_at is not None and offer.id is not None:
            uow.outbox.add(notice_kind, offer.id, now)


def fill_seats(uow: UnitOfWork, cancellation_id: int, now: datetime, settings: Settings) -> int:
    """Offer the slot to as many eligible patients as there are free seats. Returns offers made."""
    for attempt in range(3):
        try:
            return _fill_seats_once(uow, cancellation_id, now, settings)
        except IntegrityError:
            # another slot's refill picked the same patient a moment earlier: choose again
            log.info(
                "seat refill for cancellation %s raced another refill; retrying", cancellation_id
            )
            if attempt == 2:
                raise
    return 0


def _fill_seats_once(
    uow: UnitOfWork, cancellation_id: int, now: datetime, settings: Settings
) -> int:
    policy = settings.offering
    with uow:
        cancellation = uow.cancellations.get_for_update(cancellation_id)
        if cancellation is None:
            return 0
        withdrawn = cancellation.expire_if_too_close(now, policy)
        if withdrawn is not None:
            uow.events.record(
                "cancellation_expired", Actor.SYSTEM, now, cancellation_id=cancellation.id
            )
            notify_closed_offers(uow, withdrawn, "offer_withdrawn", now)
            uow.commit()
            return 0
        seats = cancellation.seats_to_fill(now, policy)
        if seats == 0:
            return 0
        provider = uow.providers.get(cancellation.provider_id)
        assert provider is not None  # foreign key
        slot = model.Slot(
            provider_id=provider.id or 0,
            provider_type=provider.provider_type,
            location=cancellation.location,
            start=cancellation.slot_start,
            end=cancellation.slot_end,
        )
        candidates = uow.waitlist.select_candidates(
            cancellation, slot, policy, settings.scoring, now, seats
        )
        made: list[tuple[model.Offer, int]] = []
        for candidate in candidates:
            entry = uow.waitlist.get(candidate.entry_id)
            assert entry is not None
            made.append((cancellation.make_offer(entry, now), candidate.score))
        uow.flush()
        for offer, score in made:
            assert offer.id is not None
            uow.outbox.add("offer", offer.id, now)
            uow.events.record(
                "offer_created",
                Actor.SYSTEM,
                now,
                patient_id=offer.patient_id,
                entry_id=offer.entry_id,
                cancellation_id=cancellation.id,
                offer_id=offer.id,
                data={"score": score},
            )
        uow.commit()
        return len(made)


def expire_due_holds(
    uow: UnitOfWork, now: datetime, settings: Settings, batch: int = 1000
) -> tuple[int, set[int]]:
    """Expire holds that ran out. Returns how many, and the cancellations that now have free seats."""
    total, touched = 0, set()
    while True:
        with uow:
            due = uow.offers.due_holds(now, batch)
            if not due:
                break
            offer_ids = [offer_id for offer_id, _ in due]
            uow.offers.expire(offer_ids, now)
            for offer_id, cancellation_id in due:
                uow.events.record(
                    "offer_expired",
                    Actor.SYSTEM,
                    now,
                    cancellation_id=cancellation_id,
                    offer_id=offer_id,
                    data={"reason": "hold ran out"},
                )
            uow.commit()
        total += len(due)
        touched.update(cancellation_id for _, cancellation_id in due)
        if len(due) < batch:
            break
    return total, touched


def sweep(uow: UnitOfWork, now: datetime, settings: Settings) -> dict[str, int]:
    """The periodic job: expire holds, then give every open slot its free seats (or close it)."""
    expired, _ = expire_due_holds(uow, now, settings)
    policy = settings.offering
    may_offer = policy.contact_hours.is_open(now, policy.timezone)
    with uow:
        due = uow.cancellations.needing_attention(now, policy, may_offer)
    offered = 0
    for cancellation_id in due:
        offered += fill_seats(uow, cancellation_id, now, settings)
    return {"expired": expired, "checked": len(due), "offered": offered}
