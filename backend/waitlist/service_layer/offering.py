"""The offering engine: fill a slot's free seats, expire holds, close slots that start too soon,
and release offers whose text could not leave in time.

Every function opens its own unit of work and is safe to run in several processes at once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from waitlist.adapters import offer_history
from waitlist.config import Settings
from waitlist.domain.model import AcceptanceEstimate, Actor, BatchPlan, OfferingPolicy
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def refill_freed_seats(uow: UnitOfWork, now: datetime, settings: Settings) -> int:
    """Give the seats freed by the work this unit of work committed to the next patients."""
    offered = 0
    for cancellation_id in sorted(uow.take_seats_freed()):
        offered += fill_seats(uow, cancellation_id, now, settings)
    return offered


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
        if cancellation.expire_if_too_close(now, policy) is not None:
            uow.events.record(
                "cancellation_expired", Actor.SYSTEM, now, cancellation_id=cancellation.id
            )
            uow.commit()
            return 0
        if cancellation.seats_to_fill(now, policy, _largest_plan(policy)) == 0:
            return 0  # closed, outside contact hours, or every seat taken: no estimate needed
        plan = cancellation.plan_batch(now, policy, _estimate(uow, now, policy))
        seats = cancellation.seats_to_fill(now, policy, plan)
        if seats == 0 or uow.messaging.get().blocks_offers(now, settings.pause_probe_after):
            # while texts cannot leave, nobody is offered: an offer now would be lost to the outage
            return 0
        provider = uow.providers.get(cancellation.provider_id)
        assert provider is not None  # foreign key
        slot = cancellation.slot(provider)
        candidates = uow.waitlist.select_candidates(
            cancellation, slot, policy, settings.scoring, now, seats
        )
        chosen = []
        for candidate in candidates:
            entry = uow.waitlist.get(candidate.entry_id)
            assert entry is not None
            chosen.append((entry, candidate.score))
        cancellation.offer_batch(chosen, now, plan)
        uow.commit()
        return len(candidates)


def _largest_plan(policy: OfferingPolicy) -> BatchPlan:
    """The most seats any plan could give: a cheap first check before the history is read."""
    return BatchPlan(size=policy.batch_size, hold=policy.hold, reason="")


def _estimate(uow: UnitOfWork, now: datetime, policy: OfferingPolicy) -> AcceptanceEstimate | None:
    """The clinic's recent answers blended with the prior (adaptive mode only)."""
    rule = policy.adaptive
    if rule is None:
        return None
    found = offer_history.recent_answers(uow.session, now - rule.history, now)
    return AcceptanceEstimate.blend(found.offers, found.accepted, found.reply, rule)


def _close_offers(
    uow: UnitOfWork,
    due: dict[int, list[int]],
    close: str,
    now: datetime,
    settings: Settings,
) -> int:
    """Apply one closing rule to the given offers, one aggregate (and one transaction) at a time."""
    closed = 0
    for cancellation_id, offer_ids in due.items():
        with uow:
            cancellation = uow.cancellations.get_for_update(cancellation_id, skip_locked=True)
            if cancellation is None:
                continue  # another sweeper or a claim holds it: it will be looked at again
            for offer_id in offer_ids:
                offer = cancellation.offer(offer_id)
                if not offer.is_pending:
                    continue
                if close == "expire" and offer.hold_has_run_out(now):
                    cancellation.expire_hold(offer_id, now)
                    closed += 1
                elif close == "release" and not offer.was_sent:
                    cancellation.release_unsent(offer_id, now, "text could not leave in time")
                    closed += 1
            uow.commit()
    return closed


def expire_due_holds(uow: UnitOfWork, now: datetime, settings: Settings, batch: int = 1000) -> int:
    """Expire holds that ran out; their seats are refilled by the caller."""
    with uow:
        due = uow.offers.due_holds(now, batch)
    return _close_offers(uow, due, "expire", now, settings)


def release_unsent_offers(uow: UnitOfWork, now: datetime, settings: Settings) -> int:
    """Offers whose text could not leave within the bound (an outage, contact hours closing) are
    released without penalty; their seats refill when sending works again, top patients first."""
    with uow:
        due = uow.offers.unsent_since(now - settings.offer_send_deadline, 1000)
    released = _close_offers(uow, due, "release", now, settings)
    if released:
        log.warning("released %s offers whose texts could not leave in time", released)
    return released


def sweep(uow: UnitOfWork, now: datetime, settings: Settings) -> dict[str, int]:
    """The periodic job: expire holds, release stale unsent offers, then give every open slot its
    free seats (or close it)."""
    expired = expire_due_holds(uow, now, settings)
    released = release_unsent_offers(uow, now, settings)
    uow.take_seats_freed()  # every open slot is looked at below anyway
    policy = settings.offering
    with uow:
        paused = uow.messaging.get().blocks_offers(now, settings.pause_probe_after)
        may_offer = policy.contact_hours.is_open(now, policy.timezone) and not paused
        due = uow.cancellations.needing_attention(now, policy, may_offer)
    offered = 0
    for cancellation_id in due:
        offered += fill_seats(uow, cancellation_id, now, settings)
    return {"expired": expired, "released": released, "checked": len(due), "offered": offered}
