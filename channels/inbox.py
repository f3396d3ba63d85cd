"""The inbound inbox: every text is processed at least once and applied exactly once.

A webhook first stores the text (one statement: ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, which
also drops Twilio's redeliveries), then runs the phone's queue in arrival order. A turn that could not
be applied (the action server or the backend down, a reply that could not leave) stays in the inbox and
is run again with backoff until it is; a Rasa server that dies mid-turn leaves a lease that runs out,
and another server (or the restarted one) takes the text over. The backend's reply API ignores a
repeated message id, so a text applied once is never applied twice.

Methods block (database calls); the channel runs them in an executor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Protocol

from channels.statements import Statements

# How long one turn may take before another server may take the text over.
LEASE = timedelta(seconds=90)
# Backoff between attempts of one text: the opt-out of a patient who wrote while a part was down is
# honoured well within two minutes of the part coming back.
RETRY_DELAYS = (5, 10, 20, 30)
# After this long a text is given up (and logged); staff see the patient's conversation anyway.
GIVE_UP_AFTER = timedelta(hours=24)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1])


@dataclass(frozen=True)
class InboundText:
    message_sid: str
    phone: str
    body: str
    num_media: int = 0
    attempts: int = 0
    received_at: datetime | None = None


class Inbox(Protocol):
    def receive(self, text: InboundText) -> bool:
        """Store a text; False when this MessageSid was received before (a redelivery)."""

    def take_next(self, phone: str) -> InboundText | None:
        """Lease the oldest unfinished text of this phone, if it is due and nobody holds it."""

    def finish(self, message_sid: str) -> None:
        """The turn ran with every part up: done for good (the body is dropped)."""

    def retry_later(self, message_sid: str, error: str) -> bool:
        """Run it again after a backoff; False when it was given up."""

    def phones_due(self, limit: int = 100) -> list[str]:
        """Phones with a text due for another attempt, or whose lease ran out."""


class PostgresInbox:
    """The inbox in the backend's `inbound_messages` table, shared by every Rasa replica."""

    def __init__(self, database_url: str) -> None:
        self._db = Statements(database_url)

    def _run(self, statement: str, **params: object) -> list[tuple]:
        return self._db.run(statement, **params)

    def receive(self, text: InboundText) -> bool:
        rows = self._run(
            "INSERT INTO inbound_messages"
            " (message_sid, phone, body, num_media, status, next_attempt_at, received_at)"
            " VALUES (:sid, :phone, :body, :media, 'pending', clock_timestamp(), clock_timestamp())"
            " ON CONFLICT (message_sid) DO NOTHING RETURNING message_sid",
            sid=text.message_sid,
            phone=text.phone,
            body=text.body,
            media=text.num_media,
        )
        return bool(rows)

    def take_next(self, phone: str) -> InboundText | None:
        # The head of the phone's queue only: a later text never overtakes an earlier one. Two
        # servers racing for the head both pick it, and the row lock lets one UPDATE through; the
        # other re-checks the status and updates nothing.
        rows = self._run(
            "UPDATE inbound_messages m SET status = 'processing', attempts = m.attempts + 1,"
            "   lease_until = clock_timestamp() + make_interval(secs => :lease)"
            " WHERE m.message_sid = ("
            "   SELECT message_sid FROM inbound_messages"
            "   WHERE phone = :phone AND status <> 'done'"
            "   ORDER BY received_at, message_sid LIMIT 1)"
            " AND ((m.status = 'pending' AND m.next_attempt_at <= clock_timestamp())"
            "      OR (m.status = 'processing' AND m.lease_until < clock_timestamp()))"
            " RETURNING m.message_sid, m.phone, m.body, m.num_media, m.attempts, m.received_at",
            phone=phone,
            lease=LEASE.total_seconds(),
        )
        if not rows:
            return None
        sid, phone, body, media, attempts, received_at = rows[0]
        return InboundText(sid, phone, body or "", media or 0, attempts, received_at)

    def finish(self, message_sid: str) -> None:
        self._run(
            "UPDATE inbound_messages SET status = 'done', body = NULL, lease_until = NULL,"
            " done_at = clock_timestamp(), last_error = NULL WHERE message_sid = :sid",
            sid=message_sid,
        )

    def retry_later(self, message_sid: str, error: str) -> bool:
        rows = self._run(
            "UPDATE inbound_messages SET lease_until = NULL, last_error = :error,"
            "  status = CASE WHEN received_at < clock_timestamp() - make_interval(secs => :give_up)"
            "           THEN 'done' ELSE 'pending' END,"
            "  body = CASE WHEN received_at < clock_timestamp() - make_interval(secs => :give_up)"
            "         THEN NULL ELSE body END,"
            "  next_attempt_at = clock_timestamp() + make_interval(secs =>"
            "    (CAST(:delays AS integer[]))[LEAST(GREATEST(attempts, 1), :steps)])"
            " WHERE message_sid = :sid RETURNING status",
            sid=message_sid,
            error=error[:200],
            give_up=GIVE_UP_AFTER.total_seconds(),
            delays=list(RETRY_DELAYS),
            steps=len(RETRY_DELAYS),
        )
        return bool(rows) and rows[0][0] == "pending"

    def phones_due(self, limit: int = 100) -> list[str]:
        # Only the head of each queue counts (as in take_next): a phone whose head is leased or
        # backing off cannot advance, and listing it for its later texts would spend the limit on
        # phones that drain nothing while due ones wait.
        rows = self._run(
            "SELECT phone FROM ("
            "   SELECT DISTINCT ON (phone) phone, status, next_attempt_at, lease_until"
            "   FROM inbound_messages WHERE status <> 'done' AND phone IS NOT NULL"
            "   ORDER BY phone, received_at, message_sid) head"
            " WHERE (status = 'pending' AND next_attempt_at <= clock_timestamp())"
            "    OR (status = 'processing' AND lease_until < clock_timestamp())"
            " LIMIT :limit",
            limit=limit,
        )
        return [row[0] for row in rows]

    def dispose(self) -> None:
        self._db.dispose()


@dataclass
class _Row:
    text: InboundText
    status: str = "pending"
    next_attempt_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    lease_until: datetime | None = None


class MemoryInbox:
    """The same rules in one process's memory, for development without DATABASE_URL and for tests.
    Not shared by replicas, and lost on restart."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _now() -> datetime:
        return datetime.now(timezone.utc)

    def receive(self, text: InboundText) -> bool:
        with self._lock:
            if text.message_sid in self._rows:
                return False
            now = self._now()
            self._rows[text.message_sid] = _Row(replace(text, received_at=now), next_attempt_at=now)
            while len(self._rows) > self._capacity:
                oldest = next(iter(self._rows))
                del self._rows[oldest]
            return True

    def take_next(self, phone: str) -> InboundText | None:
        with self._lock:
            now = self._now()
            queue = [r for r in self._rows.values() if r.text.phone == phone and r.status != "done"]
            if not queue:
                return None
            head = queue[0]
            due = head.status == "pending" and head.next_attempt_at <= now
            stale = head.status == "processing" and head.lease_until is not None and (
                head.lease_until < now
            )
            if not (due or stale):
                return None
            head.status, head.lease_until = "processing", now + LEASE
            head.text = replace(head.text, attempts=head.text.attempts + 1)
            return head.text

    def finish(self, message_sid: str) -> None:
        with self._lock:
            row = self._rows.get(message_sid)
            if row is not None:
                row.status, row.lease_until = "done", None
                row.text = replace(row.text, body="")

    def retry_later(self, message_sid: str, error: str) -> bool:
        with self._lock:
            row = self._rows.get(message_sid)
            if row is None:
                return False
            now = self._now()
            received = row.text.received_at or now
            if now - received > GIVE_UP_AFTER:
                # as finish(): a given-up text keeps no body
                row.status, row.lease_until = "done", None
                row.text = replace(row.text, body="")
                return False
            row.status, row.lease_until = "pending", None
            row.next_attempt_at = now + retry_delay(row.text.attempts)
            return True

    def phones_due(self, limit: int = 100) -> list[str]:
        with self._lock:
            now = self._now()
            phones: list[str] = []
            seen: set[str] = set()
            for row in self._rows.values():
                if row.status == "done" or row.text.phone in seen:
                    continue
                seen.add(row.text.phone)  # only the head of each queue counts, as in take_next
                due = row.status == "pending" and row.next_attempt_at <= now
                stale = row.status == "processing" and row.lease_until is not None and (
                    row.lease_until < now
                )
                if due or stale:
                    phones.append(row.text.phone)
            return phones[:limit]
