"""Small helpers that set up a clinic through the service layer, as staff would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from waitlist.config import Settings
from waitlist.service_layer import staff
from waitlist.service_layer.unit_of_work import UnitOfWork

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 New York, a Tuesday
PHONES = [f"+1202555{n:04d}" for n in range(100, 1100)]


def provider(
    uow: UnitOfWork, now: datetime, name: str = "Dr. Lee", kind: str = "dermatology"
) -> int:
    return staff.create_provider(uow, name, kind, now, "test")["id"]


def patient(uow: UnitOfWork, now: datetime, n: int, language: str = "en") -> int:
    return staff.create_patient(uow, PHONES[n], f"P{n}", language, "test", now, "test")["id"]


def entry(
    uow: UnitOfWork, now: datetime, settings: Settings, patient_id: int, **fields: Any
) -> int:
    data = staff.EntryInput(**fields)
    return staff.add_to_waitlist(uow, patient_id, data, set(fields), now, settings, "test")["id"]


def waitlisted(
    uow: UnitOfWork, now: datetime, settings: Settings, count: int, **fields: Any
) -> list[int]:
    """`count` patients on the waitlist, patient i joined i minutes before the next (earliest first)."""
    ids = []
    for n in range(count):
        pid = patient(uow, now, n)
        entry(uow, now - timedelta(minutes=count - n), settings, pid, **fields)
        ids.append(pid)
    return ids


def cancellation(
    uow: UnitOfWork,
    now: datetime,
    settings: Settings,
    provider_id: int,
    starts_in: timedelta = timedelta(days=2),
    location: str = "Main Street",
) -> int:
    start = now + starts_in
    view = staff.create_cancellation(
        uow, provider_id, location, start, start + timedelta(minutes=30), now, settings, "test"
    )
    return view["id"]


def offers_of(uow: UnitOfWork, cancellation_id: int) -> list[dict[str, Any]]:
    return staff.get_cancellation(uow, cancellation_id)["offers"]


def states(uow: UnitOfWork, cancellation_id: int) -> dict[int, str]:
    """patient id -> offer state"""
    return {o["patient_id"]: o["state"] for o in offers_of(uow, cancellation_id)}


def set_joined(uow: UnitOfWork, entry_id: int, joined_at: datetime) -> None:
    with uow:
        uow.session.execute(
            sa.text("UPDATE waitlist_entries SET joined_at = :j WHERE id = :id"),
            {"j": joined_at, "id": entry_id},
        )
        uow.commit()
