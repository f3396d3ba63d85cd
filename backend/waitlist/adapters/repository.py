"""Persistence for the domain objects, plus the one query that matters most: who gets offered a slot.

Locking conventions (so that several workers and replicas never handle one row twice):
- a claim, decline or seat refill locks the cancellation row, then its offer rows (FOR UPDATE);
- sweeps take rows with FOR UPDATE SKIP LOCKED, so two sweepers split the work instead of repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from waitlist.adapters import orm, selection
from waitlist.domain import accounts, model


def paged(
    session: Session,
    query: sa.Select[Any] | sa.TextClause,
    limit: int,
    offset: int,
    params: dict[str, Any] | None = None,
) -> tuple[sa.Result[Any], int]:
    """One page of `query` (which must order its rows fully, so pages neither skip nor repeat a
    row) and how many rows it has in all: what every list in the staff API returns."""
    if isinstance(query, sa.TextClause):
        # a hand-written read model: count and cut it in SQL around its own text
        sql = query.text
        count = sa.text(f"SELECT count(*) FROM ({sql}) AS listed")
        page = sa.text(f"{sql} LIMIT :page_limit OFFSET :page_offset")
        total = session.execute(count, params or {}).scalar_one()
        cut = {**(params or {}), "page_limit": limit, "page_offset": offset}
        return session.execute(page, cut), total
    counted = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    total = session.execute(counted, params or {}).scalar_one()
    return session.execute(query.limit(limit).offset(offset), params or {}), total


class ProviderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, provider: model.Provider) -> None:
        self.session.add(provider)

    def get(self, provider_id: int) -> model.Provider | None:
        return self.session.get(model.Provider, provider_id)

    def list(self, limit: int, offset: int) -> tuple[list[model.Provider], int]:
        query = sa.select(model.Provider).order_by(orm.providers.c.id)
        rows, total = paged(self.session, query, limit, offset)
        return list(rows.scalars()), total


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, patient: model.Patient) -> None:
        self.session.add(patient)

    def get(self, patient_id: int) -> model.Patient | None:
        return self.session.get(model.Patient, patient_id)

    def search(self, text: str, limit: int, offset: int) -> tuple[list[model.Patient], int]:
        """Patients whose name contains `text`, or whose number contains its digits; by name."""
        t = orm.patients.c
        digits = "".join(ch for ch in text if ch.isdigit())
        match = t.display_name.icontains(text, autoescape=True)
        if len(digits) >= 3:
            match = sa.or_(match, t.phone.contains(digits, autoescape=True))
        query = sa.select(model.Patient).where(match).order_by(t.display_name, t.id)
        rows, total = paged(self.session, query, limit, offset)
        return list(rows.scalars()), total

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

    def for_patient(self, patient_id: int) -> list[model.WaitlistEntry]:
        """Every entry the patient ever had, newest first (the patient page shows them all)."""
        t = orm.waitlist_entries.c
        query = (
            sa.select(model.WaitlistEntry).where(t.patient_id == patient_id).order_by(t.id.desc())
        )
        return list(self.session.scalars(query))

    def list(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[model.WaitlistEntry], int]:
        t = orm.waitlist_entries.c
        query = sa.select(model.WaitlistEntry).order_by(t.id)
        if status:
            query = query.where(t.status == status)
        rows, total = paged(self.session, query, limit, offset)
        return list(rows.scalars()), total

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

    def explain_selection(
        self,
        cancellation: model.Cancellation,
        slot: model.Slot,
        policy: model.OfferingPolicy,
        scoring: model.ScoringPolicy,
        now: datetime,
    ) -> dict[str, Any]:
        """Whom each eligibility rule turns away for this slot right now, and who is left."""
        params = selection.slot_params(cancellation, slot, policy, scoring, now)
        return selection.explain(self.session, params)

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


# A slot in one of these states holds the provider's chair (uq_cancellations_provider_slot).
SLOT_HOLDING_STATUSES = (model.CancellationStatus.OPEN, model.CancellationStatus.FILLED)


class CancellationRepository:
    """Remembers every aggregate it hands out (`seen`), so the unit of work can collect their events."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seen: list[model.Cancellation] = []

    def _saw(self, cancellation: model.Cancellation | None) -> model.Cancellation | None:
        if cancellation is not None and not any(c is cancellation for c in self.seen):
            self.seen.append(cancellation)
        return cancellation

    def add_unless_slot_taken(self, cancellation: model.Cancellation) -> model.Cancellation | None:
        """Store a new slot, or nothing when the provider's chair at that start is already open or
        filled: one statement, so two identical requests at once cannot both win."""
        t = orm.cancellations.c
        new_id = self.session.execute(
            pg_insert(orm.cancellations)
            .values(
                provider_id=cancellation.provider_id,
                location=cancellation.location,
                slot_start=cancellation.slot_start,
                slot_end=cancellation.slot_end,
                status=cancellation.status,
                created_at=cancellation.created_at,
            )
            .on_conflict_do_nothing(
                index_elements=[t.provider_id, t.slot_start],
                index_where=t.status.in_(SLOT_HOLDING_STATUSES),
            )
            .returning(t.id)
        ).scalar_one_or_none()
        return None if new_id is None else self.get(new_id)

    def holding_slot(self, provider_id: int, slot_start: datetime) -> int | None:
        """The id of the open or filled slot of this provider at this start, if any."""
        t = orm.cancellations.c
        return self.session.execute(
            sa.select(t.id).where(
                t.provider_id == provider_id,
                t.slot_start == slot_start,
                t.status.in_(SLOT_HOLDING_STATUSES),
            )
        ).scalar_one_or_none()

    def get(self, cancellation_id: int) -> model.Cancellation | None:
        return self._saw(self.session.get(model.Cancellation, cancellation_id))

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
        return self._saw(cancellation)

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

    def list(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[model.Cancellation], int]:
        c = orm.cancellations.c
        # the id breaks ties between slots that start together, so pages are stable
        query = sa.select(model.Cancellation).order_by(c.slot_start, c.id)
        if status:
            query = query.where(c.status == status)
        rows, total = paged(self.session, query, limit, offset)
        return list(rows.scalars()), total


@dataclass(frozen=True)
class OfferHistoryRow:
    id: int
    cancellation_id: int
    state: model.OfferState
    created_at: datetime
    sent_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    delivery_status: str | None
    slot_start: datetime
    location: str
    provider_name: str


class OfferRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, offer_id: int) -> model.Offer | None:
        return self.session.get(model.Offer, offer_id)

    def current_for_patient(self, patient_id: int) -> model.Offer | None:
        """The offer a reply most likely answers: the pending one, else the most recent one.

        Only offers whose text left count: a patient cannot answer an offer they have never seen.
        """
        o = orm.offers.c
        query = (
            sa.select(model.Offer)
            .where(o.patient_id == patient_id, o.sent_at.is_not(None))
            .order_by((o.state == "pending").desc(), o.sent_at.desc(), o.id.desc())
            .limit(1)
        )
        return self.session.scalars(query).one_or_none()

    def history_for_patient(self, patient_id: int, limit: int) -> list[OfferHistoryRow]:
        """The patient's offers, newest first, each with the slot it offered."""
        o, c, p = orm.offers.c, orm.cancellations.c, orm.providers.c
        query = (
            sa.select(
                o.id,
                o.cancellation_id,
                o.state,
                o.created_at,
                o.sent_at,
                o.responded_at,
                o.closed_at,
                o.close_reason,
                o.delivery_status,
                c.slot_start,
                c.location,
                p.name.label("provider_name"),
            )
            .join(orm.cancellations, c.id == o.cancellation_id)
            .join(orm.providers, p.id == c.provider_id)
            .where(o.patient_id == patient_id)
            .order_by(o.created_at.desc(), o.id.desc())
            .limit(limit)
        )
        return [OfferHistoryRow(**row._mapping) for row in self.session.execute(query)]

    def due_holds(self, now: datetime, limit: int) -> dict[int, list[int]]:
        """Pending offers whose hold ran out, by cancellation id."""
        o = orm.offers.c
        query = (
            sa.select(o.id, o.cancellation_id)
            .where(o.state == "pending", o.expires_at <= now)
            .order_by(o.expires_at)
            .limit(limit)
        )
        due: dict[int, list[int]] = {}
        for row in self.session.execute(query):
            due.setdefault(row.cancellation_id, []).append(row.id)
        return due

    def unsent_since(self, before: datetime, limit: int) -> dict[int, list[int]]:
        """Pending offers created before `before` whose text has still not left, by cancellation."""
        o = orm.offers.c
        query = (
            sa.select(o.id, o.cancellation_id)
            .where(o.state == "pending", o.sent_at.is_(None), o.created_at < before)
            .order_by(o.created_at)
            .limit(limit)
        )
        unsent: dict[int, list[int]] = {}
        for row in self.session.execute(query):
            unsent.setdefault(row.cancellation_id, []).append(row.id)
        return unsent

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
    status: str = "pending"
    delivery_status: str | None = None

    @property
    def ref(self) -> str:
        """The id carried to Twilio (StatusCallback URL) and to the connector's send ledger."""
        return f"outbox-{self.id}"


# A delivery report only moves a message forward; a replayed or late report changes nothing.
DELIVERY_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}


def ref_to_outbox_id(ref: str | None) -> int | None:
    if not ref or not ref.startswith("outbox-"):
        return None
    tail = ref.removeprefix("outbox-")
    return int(tail) if tail.isdigit() else None


class OutboxRepository:
    """Texts to send. A row is leased (status `sending`) while Rasa and Twilio work on it, so no
    transaction or row lock is held across those calls; an expired lease is taken over."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, kind: str, offer_id: int, now: datetime) -> None:
        self.session.execute(
            sa.insert(orm.outbox).values(
                kind=kind, offer_id=offer_id, next_attempt_at=now, created_at=now
            )
        )

    def claim_next(self, now: datetime, lease: timedelta) -> OutboxItem | None:
        """Lease one due message (or one whose previous lease ran out) in one statement."""
        t = orm.outbox.c
        due = (
            sa.select(t.id)
            .where(
                sa.or_(
                    sa.and_(t.status == "pending", t.next_attempt_at <= now),
                    sa.and_(t.status == "sending", t.lease_until < now),
                )
            )
            .order_by(t.next_attempt_at, t.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = self.session.execute(
            sa.update(orm.outbox)
            .where(t.id == due)
            .values(status="sending", lease_until=now + lease, attempts=t.attempts + 1)
            .returning(t.id, t.kind, t.offer_id, t.attempts, t.status, t.delivery_status)
        ).one_or_none()
        return OutboxItem(*row) if row else None

    def get(self, item_id: int, for_update: bool = False) -> OutboxItem | None:
        t = orm.outbox.c
        query = sa.select(t.id, t.kind, t.offer_id, t.attempts, t.status, t.delivery_status).where(
            t.id == item_id
        )
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).one_or_none()
        return OutboxItem(*row) if row else None

    def by_message_sid(self, message_sid: str) -> OutboxItem | None:
        t = orm.outbox.c
        row = self.session.execute(
            sa.select(t.id, t.kind, t.offer_id, t.attempts, t.status, t.delivery_status)
            .where(t.message_sid == message_sid)
            .limit(1)
        ).one_or_none()
        return OutboxItem(*row) if row else None

    def _set(self, item_id: int, **values: Any) -> None:
        self.session.execute(
            sa.update(orm.outbox).where(orm.outbox.c.id == item_id).values(**values)
        )

    def mark_sent(self, item_id: int, now: datetime) -> None:
        self._set(item_id, status="sent", sent_at=now, lease_until=None, last_error=None)

    def mark_failed(self, item_id: int, error: str, code: str | None) -> None:
        self._set(
            item_id, status="failed", lease_until=None, last_error=error, permanent_error_code=code
        )

    def drop(self, item_id: int, reason: str) -> None:
        self._set(item_id, status="dropped", lease_until=None, last_error=reason)

    def retry_later(self, item_id: int, at: datetime, error: str) -> None:
        self._set(item_id, status="pending", lease_until=None, next_attempt_at=at, last_error=error)

    def postpone(self, item_id: int, at: datetime, reason: str) -> None:
        """Not an attempt (contact hours closed): give back the attempt the lease counted."""
        self._set(
            item_id,
            status="pending",
            lease_until=None,
            next_attempt_at=at,
            last_error=reason,
            attempts=orm.outbox.c.attempts - 1,
        )

    def advance_delivery(self, item_id: int, message_sid: str, status: str) -> bool:
        """Record a delivery report if it moves the message forward. One statement, so a replayed
        or out-of-order report (a `sent` after `delivered`) changes nothing."""
        t = orm.outbox.c
        rank = DELIVERY_RANK.get(status)
        if rank is None:
            return False
        current_rank = sa.case(
            *((t.delivery_status == name, value) for name, value in DELIVERY_RANK.items()),
            else_=-1,
        )
        row = self.session.execute(
            sa.update(orm.outbox)
            .where(t.id == item_id, sa.or_(t.delivery_status.is_(None), current_rank < rank))
            .values(
                delivery_status=status, message_sid=sa.func.coalesce(t.message_sid, message_sid)
            )
            .returning(t.id)
        ).one_or_none()
        return row is not None

    def drop_pending_offer_messages(self, offer_ids: list[int], reason: str) -> None:
        """An offer closed before its text left must never be sent."""
        if not offer_ids:
            return
        t = orm.outbox.c
        self.session.execute(
            sa.update(orm.outbox)
            .where(t.offer_id.in_(offer_ids), t.kind == "offer", t.status == "pending")
            .values(status="dropped", last_error=reason)
        )

    def pending_count(self) -> int:
        t = orm.outbox.c
        return (
            self.session.scalar(
                sa.select(sa.func.count()).where(t.status.in_(("pending", "sending")))
            )
            or 0
        )


@dataclass(frozen=True)
class MessagingHealth:
    consecutive_failures: int
    paused_since: datetime | None
    last_error: str | None
    last_change_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def blocks_offers(self, now: datetime, probe_after: timedelta) -> bool:
        """Paused, and the last failure is recent. After `probe_after` without a failure the
        breaker lets offers through again (half-open): their sends are the probe, and one more
        failure pauses it at once, since the count of failures in a row was never reset."""
        if self.paused_since is None:
            return False
        return self.last_change_at is None or now - self.last_change_at < probe_after


class MessagingHealthRepository:
    """The circuit breaker's state: one row, updated in single statements by every replica."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self) -> MessagingHealth:
        t = orm.messaging_health.c
        row = self.session.execute(
            sa.select(t.consecutive_failures, t.paused_since, t.last_error, t.updated_at).where(
                t.id == 1
            )
        ).one_or_none()
        return MessagingHealth(*row) if row else MessagingHealth(0, None, None)

    def record_failure(self, now: datetime, error: str, threshold: int) -> MessagingHealth:
        t = orm.messaging_health.c
        failures = t.consecutive_failures + 1
        row = self.session.execute(
            sa.update(orm.messaging_health)
            .where(t.id == 1)
            .values(
                consecutive_failures=failures,
                last_error=error,
                updated_at=now,
                paused_since=sa.case(
                    (sa.and_(t.paused_since.is_(None), failures >= threshold), now),
                    else_=t.paused_since,
                ),
            )
            .returning(t.consecutive_failures, t.paused_since, t.last_error, t.updated_at)
        ).one()
        return MessagingHealth(*row)

    def record_success(self, now: datetime) -> MessagingHealth:
        """Returns the state before the reset, so the caller can tell whether offering resumed."""
        before = self.get()
        if before.consecutive_failures or before.paused:
            self.session.execute(
                sa.update(orm.messaging_health)
                .where(orm.messaging_health.c.id == 1)
                .values(consecutive_failures=0, paused_since=None, updated_at=now)
            )
        return before


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

    def list(self, kind: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        e = orm.audit_events.c
        query = sa.select(orm.audit_events).order_by(e.id.desc())
        if kind:
            query = query.where(e.kind == kind)
        rows, total = paged(self.session, query, limit, offset)
        return [dict(r) for r in rows.mappings()], total


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


@dataclass(frozen=True)
class IdempotencyRecord:
    """What the first request with a key left: its body's hash, and its answer once it has one."""

    request_hash: str
    status_code: int | None
    response: Any


class IdempotencyKeys:
    """Idempotency-Key rows of staff POSTs: one statement claims a key, so one request runs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(
        self, scope: str, key: str, request_hash: str, now: datetime, stale: datetime
    ) -> bool:
        """True when this request is the first with the key (or the key's last use is older than
        `stale`, and is taken over); False when another request holds or answered it."""
        t = orm.idempotency_keys
        insert = pg_insert(t).values(
            scope=scope, key=key, request_hash=request_hash, created_at=now
        )
        claimed = self.session.execute(
            insert.on_conflict_do_update(
                index_elements=[t.c.scope, t.c.key],
                set_={
                    "request_hash": insert.excluded.request_hash,
                    "status_code": None,
                    "response": None,
                    "created_at": insert.excluded.created_at,
                },
                where=t.c.created_at < stale,
            ).returning(t.c.key)
        ).scalar_one_or_none()
        return claimed is not None

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        t = orm.idempotency_keys.c
        row = self.session.execute(
            sa.select(t.request_hash, t.status_code, t.response).where(
                t.scope == scope, t.key == key
            )
        ).one_or_none()
        return IdempotencyRecord(*row) if row else None

    def answer(self, scope: str, key: str, status_code: int, response: Any) -> None:
        t = orm.idempotency_keys.c
        self.session.execute(
            sa.update(orm.idempotency_keys)
            .where(t.scope == scope, t.key == key)
            .values(status_code=status_code, response=response)
        )

    def release(self, scope: str, key: str) -> None:
        """Forget a key whose first request failed, so that a retry runs it again."""
        t = orm.idempotency_keys.c
        self.session.execute(
            sa.delete(orm.idempotency_keys).where(
                t.scope == scope, t.key == key, t.status_code.is_(None)
            )
        )


class StaffAccounts:
    """Staff users and their console sessions."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, user: accounts.StaffUser) -> None:
        self.session.add(user)

    def by_username(self, username: str) -> accounts.StaffUser | None:
        query = sa.select(accounts.StaffUser).where(orm.staff_users.c.username == username)
        return self.session.scalars(query).one_or_none()

    def by_id(self, user_id: int) -> accounts.StaffUser | None:
        return self.session.get(accounts.StaffUser, user_id)

    def by_api_token(self, token_hash: str) -> accounts.StaffUser | None:
        query = sa.select(accounts.StaffUser).where(
            orm.staff_users.c.api_token_hash == token_hash,
            orm.staff_users.c.disabled_at.is_(None),
        )
        return self.session.scalars(query).one_or_none()

    def list(self, limit: int, offset: int) -> tuple[list[accounts.StaffUser], int]:
        t = orm.staff_users.c
        query = sa.select(accounts.StaffUser).order_by(t.username, t.id)
        rows, total = paged(self.session, query, limit, offset)
        return list(rows.scalars()), total

    def start_session(
        self, token_hash: str, user_id: int, csrf_token: str, now: datetime, expires_at: datetime
    ) -> None:
        self.session.execute(
            sa.insert(orm.staff_sessions).values(
                token_hash=token_hash,
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def session_user(self, token_hash: str, now: datetime) -> tuple[accounts.StaffUser, str] | None:
        """The user of a live session and its CSRF token."""
        t = orm.staff_sessions.c
        row = self.session.execute(
            sa.select(t.user_id, t.csrf_token).where(t.token_hash == token_hash, t.expires_at > now)
        ).one_or_none()
        if row is None:
            return None
        user = self.by_id(row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        return user, row.csrf_token

    def end_session(self, token_hash: str) -> None:
        t = orm.staff_sessions.c
        self.session.execute(sa.delete(orm.staff_sessions).where(t.token_hash == token_hash))
