"""Persistence for the domain objects, plus the one query that matters most: who gets offered a slot.

Locking conventions (so that several workers and replicas never handle one row twice):
- a claim, decline or seat refill locks the cancellation row, then its offer rows (FOR UPDATE);
- sweeps take rows with FOR UPDATE SKIP LOCKED, so two sweepers split the work instead of repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from waitlist.adapters import orm, selection
from waitlist.domain import model


class ProviderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, provider: model.Provider) -> None:
        self.session.add(provider)

    def get(self, provider_id: int) -> model.Provider | None:
        return self.session.get(model.Provider, provider_id)

    def list(self) -> list[model.Provider]:
        return list(self.session.scalars(sa.select(model.Provider).order_by(orm.providers.c.id)))


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, patient: model.Patient) -> None:
        self.session.add(patient)

    def get(self, patient_id: int) -> model.Patient | None:
        return self.session.get(model.Patient, patient_id)

    def by_phone(self, phone: str, for_update: bool = False) -> model.Patient | None:
        query = sa.select(model.Patient).where(orm.patients.c.phone == phone)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()


class WaitlistRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: model.WaitlistEntry) -> None:
        self.session.add(entry)

    def get(self, entry_id: int, for_update: bool = False) -> model.WaitlistEntry | None:
        if not for_update:
            return self.session.get(model.WaitlistEntry, entry_id)
        query = (
            sa.select(model.WaitlistEntry)
            .where(orm.waitlist_entries.c.id == entry_id)
            .with_for_update()
        )
        return self.session.scalars(query).one_or_none()

    def active_for_patient(
        self, patient_id: int, for_update: bool = True
    ) -> list[model.WaitlistEntry]:
        t = orm.waitlist_entries.c
        query = (
            sa.select(model.WaitlistEntry)
            .where(t.patient_id == patient_id, t.status == model.EntryStatus.ACTIVE)
            .order_by(t.id)
        )
        if for_update:
            query = query.with_for_update()
        return list(self.session.scalars(query))

    def list(self, status: str | None, limit: int, offset: int) -> list[model.WaitlistEntry]:
        t = orm.waitlist_entries.c
        query = sa.select(model.WaitlistEntry).order_by(t.id).limit(limit).offset(offset)
        if status:
            query = query.where(t.status == status)
        return list(self.session.scalars(query))

    def select_candidates(
        self,
        cancellation: model.Cancellation,
        slot: model.Slot,
        policy: model.OfferingPolicy,
        scoring: model.ScoringPolicy,
        now: datetime,
        limit: int,
    ) -> list[selection.Candidate]:
        """The best eligible entries for a slot, scored in SQL at this moment (never a stored score)."""
        params = selection.slot_params(cancellation, slot, policy, scoring, now)
        return selection.select(self.session, params, scoring, limit)

    def score_parts(
        self, entry_id: int, scoring: model.ScoringPolicy, now: datetime
    ) -> dict[str, int]:
        """The score of one entry as the selection query computes it (shown to staff)."""
        row = self.session.execute(
            selection.SCORE_PARTS_SQL,
            {"entry_id": entry_id, **selection.score_params(scoring, now)},
        ).one()
        return {
            "urgent": row.urgent,
            "boost": row.boost,
            "appointment": row.appointment,
            "waiting": row.waiting,
        }


class CancellationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, cancellation: model.Cancellation) -> None:
        self.session.add(cancellation)

    def get(self, cancellation_id: int) -> model.Cancellation | None:
        return self.session.get(model.Cancellation, cancellation_id)

    def get_for_update(
        self, cancellation_id: int, skip_locked: bool = False
    ) -> model.Cancellation | None:
        """Load the aggregate with its row and its offers' rows locked until commit."""
        query = (
            sa.select(model.Cancellation)
            .where(orm.cancellations.c.id == cancellation_id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True)
        )
        cancellation = self.session.scalars(query).one_or_none()
        if cancellation is None:
            return None
        self.session.execute(
            sa.select(orm.offers.c.id)
            .where(orm.offers.c.cancellation_id == cancellation_id)
            .with_for_update()
        )
        self.session.refresh(cancellation, attribute_names=["offers"])
        return cancellation

    def needing_attention(
        self, now: datetime, policy: model.OfferingPolicy, may_offer: bool
    ) -> list[int]:
        """Open slots that must close (too close to start) or may have a free seat to fill."""
        seats_free_below = 1 if policy.strict_batches else policy.batch_size
        query = sa.text(
            """
            SELECT c.id FROM cancellations c
            WHERE c.status = 'open'
              AND (c.slot_start <= :closes_before
                   OR (:may_offer AND (SELECT count(*) FROM offers o
                                       WHERE o.cancellation_id = c.id AND o.state = 'pending')
                                      < :seats_free_below))
            ORDER BY c.slot_start
            """
        )
        return list(
            self.session.scalars(
                query,
                {
                    "closes_before": now + policy.lead_time,
                    "may_offer": may_offer,
                    "seats_free_below": seats_free_below,
                },
            )
        )

    def list(self, status: str | None, limit: int, offset: int) -> list[model.Cancellation]:
        c = orm.cancellations.c
        query = sa.select(model.Cancellation).order_by(c.slot_start).limit(limit).offset(offset)
        if status:
            query = query.where(c.status == status)
        return list(self.session.scalars(query))


class OfferRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, offer_id: int) -> model.Offer | None:
        return self.session.get(model.Offer, offer_id)

    def current_for_patient(self, patient_id: int) -> model.Offer | None:
        """The offer a reply most likely answers: the pending one, else the most recent one."""
        o = orm.offers.c
        query = (
            sa.select(model.Offer)
            .where(o.patient_id == patient_id)
            .order_by((o.state == "pending").desc(), o.created_at.desc(), o.id.desc())
            .limit(1)
        )
        return self.session.scalars(query).one_or_none()

    def due_holds(self, now: datetime, limit: int) -> list[tuple[int, int]]:
        """(offer id, cancellation id) of pending offers whose hold ran out; rows stay locked."""
        o = orm.offers.c
        query = (
            sa.select(o.id, o.cancellation_id)
            .where(o.state == "pending", o.expires_at <= now)
            .order_by(o.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(row.id, row.cancellation_id) for row in self.session.execute(query)]

    def expire(self, offer_ids: list[int], now: datetime) -> None:
        o = orm.offers.c
        self.session.execute(
            sa.update(orm.offers)
            .where(o.id.in_(offer_ids), o.state == "pending")
            .values(state="expired", closed_at=now, close_reason="hold ran out")
        )

    def recent_for_phone(self, patient_id: int, since: datetime) -> list[model.Offer]:
        o = orm.offers.c
        query = (
            sa.select(model.Offer)
            .where(o.patient_id == patient_id, o.sent_at >= since)
            .order_by(o.sent_at.desc())
        )
        return list(self.session.scalars(query))


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    offer_id: int
    attempts: int


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, kind: str, offer_id: int, now: datetime) -> None:
        self.session.execute(
            sa.insert(orm.outbox).values(
                kind=kind, offer_id=offer_id, next_attempt_at=now, created_at=now
            )
        )

    def next_due(self, now: datetime) -> OutboxItem | None:
        """One due message, locked so that no other dispatcher sends it too."""
        t = orm.outbox.c
        row = self.session.execute(
            sa.select(t.id, t.kind, t.offer_id, t.attempts)
            .where(t.status == "pending", t.next_attempt_at <= now)
            .order_by(t.next_attempt_at, t.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        return OutboxItem(row.id, row.kind, row.offer_id, row.attempts) if row else None

    def mark(self, item_id: int, status: str, now: datetime, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == "sent":
            values["sent_at"] = now
        self.session.execute(
            sa.update(orm.outbox)
            .where(orm.outbox.c.id == item_id)
            .values(attempts=orm.outbox.c.attempts + 1, **values)
        )

    def retry_later(self, item_id: int, at: datetime, error: str) -> None:
        self.session.execute(
            sa.update(orm.outbox)
            .where(orm.outbox.c.id == item_id)
            .values(attempts=orm.outbox.c.attempts + 1, next_attempt_at=at, last_error=error)
        )

    def drop_pending_offer_messages(self, offer_ids: list[int], now: datetime) -> None:
        """An offer withdrawn before its text left must never be sent."""
        if not offer_ids:
            return
        t = orm.outbox.c
        self.session.execute(
            sa.update(orm.outbox)
            .where(t.offer_id.in_(offer_ids), t.kind == "offer", t.status == "pending")
            .values(status="dropped", last_error="offer closed before sending")
        )

    def pending_count(self) -> int:
        t = orm.outbox.c
        return self.session.scalar(sa.select(sa.func.count()).where(t.status == "pending")) or 0


class EventLog:
    """Append-only audit trail of every state change."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        kind: str,
        actor: model.Actor,
        now: datetime,
        actor_ref: str | None = None,
        **refs: Any,
    ) -> None:
        data = refs.pop("data", None) or {}
        self.session.execute(
            sa.insert(orm.audit_events).values(
                kind=kind,
                actor=actor.value,
                actor_ref=actor_ref,
                occurred_at=now,
                data=data,
                **refs,
            )
        )

    def for_cancellation(self, cancellation_id: int) -> list[dict[str, Any]]:
        e = orm.audit_events.c
        rows = self.session.execute(
            sa.select(orm.audit_events).where(e.cancellation_id == cancellation_id).order_by(e.id)
        ).mappings()
        return [dict(r) for r in rows]

    def list(self, kind: str | None, limit: int) -> list[dict[str, Any]]:
        e = orm.audit_events.c
        query = sa.select(orm.audit_events).order_by(e.id.desc()).limit(limit)
        if kind:
            query = query.where(e.kind == kind)
        return [dict(r) for r in self.session.execute(query).mappings()]


class ReplyLog:
    """Remembers the answer to each inbound message id, so a redelivery has no second effect."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self, message_id: str) -> None:
        # serialises two deliveries of one id that arrive at the same moment
        self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(message_id))))

    def get(self, message_id: str) -> dict[str, Any] | None:
        t = orm.processed_replies.c
        return self.session.scalar(sa.select(t.response).where(t.message_id == message_id))

    def save(self, message_id: str, kind: str, response: dict[str, Any], now: datetime) -> None:
        self.session.execute(
            sa.insert(orm.processed_replies).values(
                message_id=message_id, kind=kind, response=response, created_at=now
            )
        )
