"""A sweep of 10,000 due holds: seconds to expire them, and to refill the freed seats.

10,000 pending offers whose holds ran out, spread over 3,334 open slots (3 seats each), with 20,000
more waitlisted patients to refill from. Two figures: the expiry itself (one pass of
`expire_due_holds`), then the full `sweep` that also refills every freed seat.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from bench.common import scratch_database
from waitlist.adapters import database
from waitlist.config import Settings
from waitlist.service_layer import offering
from waitlist.service_layer.unit_of_work import UnitOfWork

HOLDS = 10_000
SLOTS = (HOLDS + 2) // 3
SPARE_PATIENTS = 20_000
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 New York: inside contact hours

LOAD_SQL = [
    "INSERT INTO providers (name, provider_type, created_at) VALUES ('Dr. Lee', 'derm', :now)",
    """INSERT INTO patients (phone, display_name, preferred_language, created_at)
       SELECT '+1' || (2000000000 + i), 'P' || i, 'en', :now
       FROM generate_series(1, :holds + :spare) i""",
    """INSERT INTO waitlist_entries (patient_id, status, provider_type, joined_at)
       SELECT i, 'active', 'derm', :now - i * interval '1 minute'
       FROM generate_series(1, :holds + :spare) i""",
    """INSERT INTO cancellations (provider_id, location, slot_start, slot_end, status, created_at)
       SELECT 1, 'Main', :now + interval '2 days' + i * interval '1 minute',
              :now + interval '2 days' + i * interval '1 minute' + interval '30 minutes', 'open', :now
       FROM generate_series(1, :slots) i""",
    """INSERT INTO offers (cancellation_id, entry_id, patient_id, state, created_at, sent_at,
                          expires_at)
       SELECT 1 + (i - 1) / 3, i, i, 'pending', :now - interval '10 minutes',
              :now - interval '10 minutes', :now - interval '3 minutes'
       FROM generate_series(1, :holds) i""",
]


def main() -> None:
    settings = Settings.from_env({})
    with scratch_database("bench_sweep") as url:
        engine = database.create_engine(url)
        with engine.begin() as conn:
            for statement in LOAD_SQL:
                conn.execute(
                    sa.text(statement),
                    {"now": NOW, "holds": HOLDS, "spare": SPARE_PATIENTS, "slots": SLOTS},
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        uow = UnitOfWork(UnitOfWork.session_factory_for(engine))

        t0 = time.perf_counter()
        expired, touched = offering.expire_due_holds(uow, NOW, settings)
        expiry_s = time.perf_counter() - t0
        print(f"expired {expired:,} due holds on {len(touched):,} slots in {expiry_s:.2f} s "
              f"(target <= 5 s)")

        t0 = time.perf_counter()
        result = offering.sweep(uow, NOW, settings)
        refill_s = time.perf_counter() - t0
        with engine.connect() as conn:
            pending = conn.execute(
                sa.text("SELECT count(*) FROM offers WHERE state = 'pending'")
            ).scalar_one()
        print(f"then refilled {result['offered']:,} seats on {result['checked']:,} slots in "
              f"{refill_s:.2f} s ({refill_s / max(1, result['checked']) * 1000:.1f} ms a slot); "
              f"pending offers now {pending:,}")
        engine.dispose()


if __name__ == "__main__":
    main()
