"""The fast selection (index walks with early stop) must pick exactly what scoring everyone picks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from waitlist.adapters import selection
from waitlist.config import Settings
from waitlist.domain import model

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def load_random_waitlist(engine: Engine, rng: random.Random, entries: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO providers (name, provider_type, created_at)"
                " SELECT 'P' || i, 'type' || (i % 3), now() FROM generate_series(1, 6) i"
            )
        )
        patients = [
            {
                "phone": f"+1202555{n:04d}",
                "display_name": f"P{n}",
                "preferred_language": "en",
                "created_at": NOW,
                "opted_out": rng.random() < 0.05,
            }
            for n in range(entries)
        ]
        conn.execute(
            sa.text(
                "INSERT INTO patients (phone, display_name, preferred_language, created_at, opted_out)"
                " VALUES (:phone, :display_name, :preferred_language, :created_at, :opted_out)"
            ),
            patients,
        )
        ids = conn.execute(sa.text("SELECT id FROM patients ORDER BY id")).scalars().all()
        rows = []
        for patient_id in ids:
            match = rng.random()
            rows.append(
                {
                    "patient_id": patient_id,
                    "status": "active" if rng.random() < 0.9 else "removed",
                    "provider_ids": [rng.randint(1, 6)] if match < 0.3 else None,
                    "provider_type": f"type{rng.randint(0, 2)}" if 0.3 <= match < 0.8 else None,
                    "location": rng.choice([None, None, "Main", "North"]),
                    "current_appointment_at": NOW + timedelta(days=rng.randint(1, 400))
                    if rng.random() < 0.6
                    else None,
                    "days_of_week": [rng.randint(0, 6), rng.randint(0, 6)]
                    if rng.random() < 0.2
                    else None,
                    "earliest_time": time(rng.randint(7, 12)) if rng.random() < 0.1 else None,
                    # coarse values on purpose: many ties in score and join date
                    "urgent": rng.random() < 0.05,
                    "manual_boost": rng.choice([0] * 8 + [5, 10, 40]),
                    "joined_at": NOW - timedelta(days=rng.choice(range(0, 800, 15))),
                }
            )
        conn.execute(
            sa.text(
                "INSERT INTO waitlist_entries (patient_id, status, provider_ids, provider_type, location,"
                " current_appointment_at, days_of_week, earliest_time, urgent, manual_boost, joined_at)"
                " VALUES (:patient_id, :status, :provider_ids, :provider_type, :location,"
                " :current_appointment_at, :days_of_week, :earliest_time, :urgent, :manual_boost,"
                " :joined_at)"
            ),
            rows,
        )
        # a patient with two entries, and some history that feeds the caps and pending rule
        conn.execute(
            sa.text(
                "INSERT INTO waitlist_entries (patient_id, status, provider_type, urgent, manual_boost,"
                " joined_at) SELECT patient_id, 'active', provider_type, true, 40, joined_at"
                " FROM waitlist_entries WHERE id = 7"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO cancellations (provider_id, location, slot_start, slot_end, status,"
                " created_at) VALUES (1, 'Main', :s, :e, 'open', :n)"
            ),
            {"s": NOW + timedelta(days=3), "e": NOW + timedelta(days=3, minutes=30), "n": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO offers (cancellation_id, entry_id, patient_id, state, created_at)"
                " SELECT 1, id, patient_id, CASE WHEN id % 20 = 0 THEN 'pending' ELSE 'declined' END,"
                " :n - interval '2 hours' FROM waitlist_entries WHERE id % 10 = 0"
            ),
            {"n": NOW},
        )


@pytest.mark.parametrize("seed", range(3))
def test_fast_selection_equals_exhaustive_scoring(clean_db: Engine, seed: int) -> None:
    rng = random.Random(seed)
    load_random_waitlist(clean_db, rng, 1500)
    settings = Settings.from_env({"DAILY_OFFER_CAP": "1"})
    with Session(clean_db) as session:
        for n in range(40):
            provider_id = rng.randint(1, 6)
            start = NOW + timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 8))
            cancellation = model.Cancellation(
                provider_id=provider_id,
                location=rng.choice(["Main", "North"]),
                slot_start=start,
                slot_end=start + timedelta(minutes=30),
                created_at=NOW,
                id=rng.choice([1, 999]),
            )
            slot = model.Slot(
                provider_id,
                f"type{provider_id % 3}",
                cancellation.location,
                start,
                cancellation.slot_end,
            )
            params = selection.slot_params(
                cancellation, slot, settings.offering, settings.scoring, NOW
            )
            for limit in (1, 3, 10):
                fast = selection.select(session, params, settings.scoring, limit)
                full = selection.exhaustive(session, params, limit)
                assert fast == full, (n, limit)
                assert len(fast) == limit
