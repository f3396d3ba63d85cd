"""The send ledger: one Twilio message per proactive text, however often the backend retries it.

The backend names each proactive text with a `ref` (its outbox row). Before a text with a ref goes to
Twilio, the ledger records it in one statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING``):

- a new row: this attempt sends, then records the MessageSid (or forgets the row when Twilio surely
  did not take the text, so that the retry sends);
- a row already `sent`: the text left before (the backend lost our answer): nothing is sent again;
- a row `sending` that is fresh: another attempt is on it right now: try later;
- a row `sending` that is stale: an attempt died between Twilio and the ledger, so we do not know.
  The channel then asks Twilio's Messages API whether that text exists before sending it.

Methods block (database calls); the channel runs them in an executor.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from channels.statements import Statements

# An attempt older than this that never recorded its result is "in doubt" (Twilio's own timeout is
# 15 s, so a live attempt has finished by then).
STALE_AFTER = timedelta(seconds=30)


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    ref: str
    status: str  # sending | sent | failed
    message_sid: str | None
    error_code: str | None
    created_at: datetime
    updated_at: datetime

    def is_stale(self, now: datetime) -> bool:
        return self.status == "sending" and now - self.updated_at > STALE_AFTER


class SendLedger(Protocol):
    def begin(self, ref: str, phone: str, body: str) -> LedgerEntry | None:
        """Record an attempt. None: this attempt owns the send. Else: what an earlier one left."""

    def take_over(self, entry: LedgerEntry) -> bool:
        """Own a stale attempt's send (False: someone else took it first)."""

    def sent(self, ref: str, message_sid: str) -> None: ...

    def failed(self, ref: str, error_code: str | None) -> None: ...

    def forget(self, ref: str) -> None:
        """Twilio surely did not take the text: let the next attempt send it."""


class PostgresSendLedger:
    """The ledger in the backend's `sms_sends` table, shared by every Rasa replica."""

    def __init__(self, database_url: str) -> None:
        self._db = Statements(database_url)

    def _run(self, statement: str, **params: object) -> list[tuple]:
        return self._db.run(statement, **params)

    def begin(self, ref: str, phone: str, body: str) -> LedgerEntry | None:
        created = self._run(
            "INSERT INTO sms_sends (ref, phone, body_sha256, status, created_at, updated_at)"
            " VALUES (:ref, :phone, :digest, 'sending', clock_timestamp(), clock_timestamp())"
            " ON CONFLICT (ref) DO NOTHING RETURNING ref",
            ref=ref,
            phone=phone,
            digest=body_digest(body),
        )
        if created:
            return None
        rows = self._run(
            "SELECT ref, status, message_sid, error_code, created_at, updated_at"
            " FROM sms_sends WHERE ref = :ref",
            ref=ref,
        )
        return LedgerEntry(*rows[0]) if rows else None

    def take_over(self, entry: LedgerEntry) -> bool:
        rows = self._run(
            "UPDATE sms_sends SET updated_at = clock_timestamp()"
            " WHERE ref = :ref AND status = 'sending' AND updated_at = :seen RETURNING ref",
            ref=entry.ref,
            seen=entry.updated_at,
        )
        return bool(rows)

    def sent(self, ref: str, message_sid: str) -> None:
        self._run(
            "UPDATE sms_sends SET status = 'sent', message_sid = :sid,"
            " updated_at = clock_timestamp() WHERE ref = :ref",
            ref=ref,
            sid=message_sid,
        )

    def failed(self, ref: str, error_code: str | None) -> None:
        self._run(
            "UPDATE sms_sends SET status = 'failed', error_code = :code,"
            " updated_at = clock_timestamp() WHERE ref = :ref",
            ref=ref,
            code=error_code,
        )

    def forget(self, ref: str) -> None:
        self._run("DELETE FROM sms_sends WHERE ref = :ref AND status = 'sending'", ref=ref)

    def dispose(self) -> None:
        self._db.dispose()


class MemorySendLedger:
    """The same rules in one process's memory (development without DATABASE_URL, tests)."""

    def __init__(self) -> None:
        self._rows: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _now() -> datetime:
        return datetime.now(timezone.utc)

    def begin(self, ref: str, phone: str, body: str) -> LedgerEntry | None:
        with self._lock:
            if ref in self._rows:
                return self._rows[ref]
            now = self._now()
            self._rows[ref] = LedgerEntry(ref, "sending", None, None, now, now)
            return None

    def take_over(self, entry: LedgerEntry) -> bool:
        with self._lock:
            current = self._rows.get(entry.ref)
            if current is None or current.updated_at != entry.updated_at:
                return False
            self._rows[entry.ref] = LedgerEntry(
                entry.ref, "sending", None, None, entry.created_at, self._now()
            )
            return True

    def _update(self, ref: str, status: str, sid: str | None, code: str | None) -> None:
        with self._lock:
            current = self._rows.get(ref)
            if current is not None:
                self._rows[ref] = LedgerEntry(ref, status, sid, code, current.created_at, self._now())

    def sent(self, ref: str, message_sid: str) -> None:
        self._update(ref, "sent", message_sid, None)

    def failed(self, ref: str, error_code: str | None) -> None:
        self._update(ref, "failed", None, error_code)

    def forget(self, ref: str) -> None:
        with self._lock:
            if ref in self._rows and self._rows[ref].status == "sending":
                del self._rows[ref]
