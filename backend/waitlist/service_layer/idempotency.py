"""Idempotency-Key for staff POSTs: a retried request gets the first request's answer.

The first request with a key claims it in one statement and runs; its answer is stored with the
key. A retry with the same key and body gets that answer again, whatever happened in between. A
retry that arrives while the first still runs is told so (409), and the same key with another body
is refused (422). A first request that failed leaves nothing: its retry runs again. Keys are kept
for 24 hours, then a new request may use the key again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from waitlist.service_layer.unit_of_work import UnitOfWork

KEPT_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Replay:
    """The answer a retried request gets instead of running again."""

    status_code: int | None  # None: the first request is still running
    response: Any
    same_request: bool


def begin(uow: UnitOfWork, scope: str, key: str, request_hash: str, now: datetime) -> Replay | None:
    """None when this request is the first with the key and should run; else what to answer."""
    with uow:
        if uow.idempotency.claim(scope, key, request_hash, now, stale=now - KEPT_FOR):
            uow.commit()
            return None
        record = uow.idempotency.get(scope, key)
    if record is None:  # the first request failed and let the key go a moment ago
        return begin(uow, scope, key, request_hash, now)
    return Replay(record.status_code, record.response, record.request_hash == request_hash)


def finish(uow: UnitOfWork, scope: str, key: str, status_code: int, response: Any) -> None:
    with uow:
        uow.idempotency.answer(scope, key, status_code, response)
        uow.commit()


def release(uow: UnitOfWork, scope: str, key: str) -> None:
    with uow:
        uow.idempotency.release(scope, key)
        uow.commit()
