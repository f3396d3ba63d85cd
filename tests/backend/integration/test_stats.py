"""GET /api/v1/stats against figures worked out by hand on seeded rows (clinic in New York)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.integration.test_api import STAFF, app, call  # noqa: F401  (the app fixture)

SEED = [
    "INSERT INTO providers (name, provider_type, created_at) VALUES ('Dr. Lee', 'derm', now())",
    "INSERT INTO patients (phone, display_name, preferred_language, created_at)"
    " SELECT '+1202555' || (1000 + i), 'P' || i, 'en', now() FROM generate_series(1, 6) i",
    "INSERT INTO waitlist_entries (patient_id, status, provider_type, joined_at)"
    " SELECT id, 'active', 'derm', now() FROM patients ORDER BY id",
    # id, created (UTC), status, closed; c3 was entered at 23:30 in New York on Nov 30; c6 is
    # before the span
    """INSERT INTO cancellations (id, provider_id, location, slot_start, slot_end, status,
                                  created_at, closed_at) VALUES
    (1, 1, 'Main', '2026-12-10 15:00Z', '2026-12-10 15:30Z', 'filled',
        '2026-11-30 14:00Z', '2026-11-30 14:12Z'),
    (2, 1, 'Main', '2026-12-11 15:00Z', '2026-12-11 15:30Z', 'filled',
        '2026-11-30 16:00Z', '2026-11-30 16:30Z'),
    (3, 1, 'Main', '2026-12-12 15:00Z', '2026-12-12 15:30Z', 'expired',
        '2026-12-01 04:30Z', '2026-12-01 06:00Z'),
    (4, 1, 'Main', '2026-12-13 15:00Z', '2026-12-13 15:30Z', 'filled',
        '2026-12-01 15:00Z', '2026-12-01 16:00Z'),
    (5, 1, 'Main', '2026-12-14 15:00Z', '2026-12-14 15:30Z', 'aborted',
        '2026-12-01 15:30Z', '2026-12-01 15:40Z'),
    (6, 1, 'Main', '2026-12-15 15:00Z', '2026-12-15 15:30Z', 'filled',
        '2026-11-23 15:00Z', '2026-11-23 15:05Z')""",
    # cancellation, patient (= entry), state, text left?
    """INSERT INTO offers (cancellation_id, entry_id, patient_id, state, created_at, sent_at)
    SELECT c, p, p, s, '2026-11-30 14:00Z',
           CASE WHEN sent THEN timestamptz '2026-11-30 14:00Z' END
    FROM (VALUES (1, 1, 'accepted', true), (1, 2, 'declined', true), (1, 3, 'expired', true),
                 (2, 4, 'accepted', true), (2, 5, 'failed', true), (2, 6, 'released', false),
                 (3, 2, 'expired', true), (3, 3, 'expired', true),
                 (4, 1, 'accepted', true), (4, 2, 'withdrawn', true),
                 (5, 3, 'withdrawn', true),
                 (6, 4, 'accepted', true)) AS v(c, p, s, sent)""",
    """INSERT INTO audit_events (occurred_at, actor, kind) VALUES
    ('2026-11-30 20:00Z', 'patient', 'patient_opted_out'),
    ('2026-12-01 03:00Z', 'patient', 'patient_opted_out'),
    ('2026-12-01 18:00Z', 'patient', 'patient_opted_out'),
    ('2026-12-01 18:00Z', 'patient', 'offer_declined_by_patient'),
    ('2026-11-20 18:00Z', 'patient', 'patient_opted_out')""",
]

EMPTY_DAY = {
    "cancellations": 0,
    "filled": 0,
    "aborted": 0,
    "fill_rate": None,
    "median_minutes_to_fill": None,
    "p90_minutes_to_fill": None,
    "offers_sent": 0,
    "offers_per_fill": None,
    "acceptance_rate": None,
    "opt_outs": 0,
    "delivery_failures": 0,
}
# Nov 30: c1 (12 min), c2 (30 min), c3 (expired); 7 texts, 2 yes, 1 failed; 2 opt-outs (one at
# 22:00 New York time, 03:00 UTC on Dec 1)
NOV_30 = {
    "cancellations": 3,
    "filled": 2,
    "aborted": 0,
    "fill_rate": 0.6667,
    "median_minutes_to_fill": 21.0,
    "p90_minutes_to_fill": 28.2,  # 12 + 0.9 * (30 - 12)
    "offers_sent": 7,
    "offers_per_fill": 3.5,
    "acceptance_rate": 0.2857,
    "opt_outs": 2,
    "delivery_failures": 1,
}
# Dec 1: c4 (60 min), c5 (aborted); 3 texts, 1 yes; 1 opt-out
DEC_1 = {
    "cancellations": 2,
    "filled": 1,
    "aborted": 1,
    "fill_rate": 0.5,
    "median_minutes_to_fill": 60.0,
    "p90_minutes_to_fill": 60.0,
    "offers_sent": 3,
    "offers_per_fill": 3.0,
    "acceptance_rate": 0.3333,
    "opt_outs": 1,
    "delivery_failures": 0,
}
# Nov 25 - Dec 1: fills of 12, 30 and 60 minutes; p90 at 0.9 * 2 = 1.8 -> 30 + 0.8 * 30
WEEK = {
    "cancellations": 5,
    "filled": 3,
    "aborted": 1,
    "fill_rate": 0.6,
    "median_minutes_to_fill": 30.0,
    "p90_minutes_to_fill": 54.0,
    "offers_sent": 10,
    "offers_per_fill": 3.3333,
    "acceptance_rate": 0.3,
    "opt_outs": 3,
    "delivery_failures": 1,
}


@pytest.fixture
def seeded(clean_db: Engine) -> None:
    with clean_db.begin() as conn:
        for statement in SEED:
            conn.execute(sa.text(statement))


def test_the_last_seven_clinic_days_by_default(app: Sanic, seeded: None) -> None:  # noqa: F811
    # the test clock reads Tuesday, December 1 2026, 10:00 in New York
    response = call(app, "get", "/api/v1/stats", STAFF)
    assert response.status == 200
    body = response.json
    days = body.pop("by_day")
    time_to_fill = body.pop("time_to_fill")
    assert body == {
        "from": "2026-11-25",
        "to": "2026-12-01",
        "timezone": "America/New_York",
        **WEEK,
    }
    # the fills of 12, 30 and 60 minutes: each bucket includes its lower bound
    assert [(b["label"], b["filled"]) for b in time_to_fill] == [
        ("under 15 min", 1),
        ("15-30 min", 0),
        ("30-60 min", 1),
        ("1-2 h", 1),
        ("2-4 h", 0),
        ("4-8 h", 0),
        ("8-24 h", 0),
        ("a day or more", 0),
    ]
    assert [b["up_to_minutes"] for b in time_to_fill] == [15, 30, 60, 120, 240, 480, 1440, None]
    assert [d["day"] for d in days] == [f"2026-11-{n}" for n in range(25, 31)] + ["2026-12-01"]
    assert [{k: v for k, v in d.items() if k != "day"} for d in days] == [EMPTY_DAY] * 5 + [
        NOV_30,
        DEC_1,
    ]


def test_one_day(app: Sanic, seeded: None) -> None:  # noqa: F811
    body = call(app, "get", "/api/v1/stats?from=2026-11-30&to=2026-11-30", STAFF).json
    assert {k: v for k, v in body.items() if k in NOV_30} == NOV_30
    assert len(body["by_day"]) == 1


@pytest.mark.parametrize(
    "query", ["from=2026-12-02&to=2026-12-01", "from=yesterday", "from=2025-01-01&to=2026-12-01"]
)
def test_a_bad_span_is_400(app: Sanic, query: str) -> None:  # noqa: F811
    response = call(app, "get", f"/api/v1/stats?{query}", STAFF)
    assert response.status == 400 and response.json["field"] in ("from", "to")


def test_stats_need_the_staff_token(app: Sanic) -> None:  # noqa: F811
    assert call(app, "get", "/api/v1/stats").status == 401
