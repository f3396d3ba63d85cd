"""Who gets offered a slot: eligibility and priority score, computed in SQL at selection time.

Scoring every eligible entry is simple but slow on a long list (a slot for a common provider type can
have 50,000 eligible entries out of 1,000,000). The score is bounded, though:

    score = static (urgent + staff boost)  +  appointment points (<= 20)  +  waiting points (<= 10)

and waiting points only grow the earlier a patient joined. So entries are walked through partial
indexes in (static part descending, joined-at ascending) order, one walk per way of matching the
slot (naming its provider, through the trigger-kept waitlist_entry_providers; its provider type;
"anyone"), split into urgent, boosted and plain entries. A walk stops as soon as nothing further
along it could still enter the top k: the best score an unseen entry could have (its static level +
the appointment points of the walk's latest appointment + waiting points at the walk's position) is
below the k-th best, or equal with a later join date, which loses the tie.

The result is exactly that of `EXHAUSTIVE_SQL`, which the tests compare against on random data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from waitlist.domain import model

PAGE = 16
SPARE = 5  # extra rows, in case one patient has several eligible entries


@dataclass(frozen=True)
class Candidate:
    entry_id: int
    patient_id: int
    score: int
    joined_at: datetime

    @property
    def rank_key(self) -> tuple[int, datetime, int]:
        # best first: highest score, then earliest joined, then lowest id
        return (-self.score, self.joined_at, self.entry_id)


def score_params(scoring: model.ScoringPolicy, now: datetime) -> dict[str, Any]:
    tiers = list(scoring.appointment_tiers) + [(10**6, 0)] * (3 - len(scoring.appointment_tiers))
    return {
        "now": now,
        "urgent_points": scoring.urgent_points,
        "tier1_at": now + timedelta(days=tiers[0][0]),
        "tier1_points": tiers[0][1],
        "tier2_at": now + timedelta(days=tiers[1][0]),
        "tier2_points": tiers[1][1],
        "tier3_at": now + timedelta(days=tiers[2][0]),
        "tier3_points": tiers[2][1],
        "wait_step": scoring.points_per_30_days_waiting,
        "max_wait": scoring.max_waiting_points,
    }


def slot_params(
    cancellation: model.Cancellation,
    slot: model.Slot,
    policy: model.OfferingPolicy,
    scoring: model.ScoringPolicy,
    now: datetime,
) -> dict[str, Any]:
    local_start = slot.start.astimezone(policy.timezone)
    local_end = slot.end.astimezone(policy.timezone)
    return {
        **score_params(scoring, now),
        "cancellation_id": cancellation.id,
        "provider_id": slot.provider_id,
        "provider_type": slot.provider_type,
        "location": slot.location,
        "slot_start": slot.start,
        "slot_date": local_start.date(),
        "slot_dow": local_start.weekday(),
        "slot_time": local_start.time(),
        "slot_end_time": local_end.time(),
        "day_ago": now - timedelta(days=1),
        "week_ago": now - timedelta(days=7),
        "daily_cap": policy.daily_cap,
        "weekly_cap": policy.weekly_cap,
    }


# The score, in one place for every query. Mirrors model.ScoringPolicy.parts().
SCORE_PARTS = """
    CASE WHEN w.urgent THEN :urgent_points ELSE 0 END AS urgent,
    w.manual_boost AS boost,
    CASE
        WHEN w.current_appointment_at IS NULL THEN 0
        WHEN w.current_appointment_at >= :tier1_at THEN :tier1_points
        WHEN w.current_appointment_at >= :tier2_at THEN :tier2_points
        WHEN w.current_appointment_at >= :tier3_at THEN :tier3_points
        ELSE 0
    END AS appointment,
    LEAST(:max_wait, GREATEST(0,
        floor(extract(epoch FROM (CAST(:now AS timestamptz) - w.joined_at)) / 2592000)::int
        * :wait_step
    )) AS waiting
"""

# Every eligibility rule except "which provider" (mirrors model.WaitlistEntry.accepts()),
# in two parts: what the entry itself says, and what its patient's offers say. Each rule is named,
# so `explain` can count whom it excludes; the queries join them with AND.
ENTRY_RULE_LIST: list[tuple[str, str]] = [
    ("not_active", "w.status = 'active'"),
    ("opted_out", "NOT p.opted_out"),
    ("location", "(w.location IS NULL OR lower(w.location) = lower(:location))"),
    (
        "current_appointment_not_later",
        "(w.current_appointment_at IS NULL OR w.current_appointment_at > :slot_start)",
    ),
    (
        "dates",
        "(w.not_before IS NULL OR w.not_before <= :slot_date)"
        " AND (w.not_after IS NULL OR w.not_after >= :slot_date)",
    ),
    (
        "day_of_week",
        "(w.days_of_week IS NULL OR CAST(:slot_dow AS smallint) = ANY(w.days_of_week))",
    ),
    (
        "time_of_day",
        "(w.earliest_time IS NULL OR w.earliest_time <= :slot_time)"
        " AND (w.latest_time IS NULL OR w.latest_time >= :slot_end_time)",
    ),
]
# An offer released by our own outage is as if never made; the caps count texts that left and
# did not fail (a number Twilio refused costs the patient nothing).
OFFER_RULE_LIST: list[tuple[str, str]] = [
    (
        "already_offered_this_slot",
        """NOT EXISTS (
        SELECT 1 FROM offers o
        WHERE o.cancellation_id = :cancellation_id AND o.patient_id = w.patient_id
          AND o.state <> 'released')""",
    ),
    (
        "holds_another_offer",
        "NOT EXISTS (SELECT 1 FROM offers o WHERE o.patient_id = w.patient_id"
        " AND o.state = 'pending')",
    ),
    (
        "daily_cap",
        """(SELECT count(*) FROM offers o
         WHERE o.patient_id = w.patient_id AND o.sent_at > :day_ago
           AND o.state <> 'failed') < :daily_cap""",
    ),
    (
        "weekly_cap",
        """(SELECT count(*) FROM offers o
         WHERE o.patient_id = w.patient_id AND o.sent_at > :week_ago
           AND o.state <> 'failed') < :weekly_cap""",
    ),
]
ENTRY_RULES = "(" + " AND ".join(rule for _, rule in ENTRY_RULE_LIST) + ")"
OFFER_RULES = "(" + " AND ".join(rule for _, rule in OFFER_RULE_LIST) + ")"

MATCHES_PROVIDER = """(
    (w.provider_ids IS NULL AND w.provider_type IS NULL)
    OR w.provider_ids @> ARRAY[CAST(:provider_id AS integer)]
    OR w.provider_type = :provider_type
)"""

NO_STATIC = "NOT w.urgent AND w.manual_boost = 0"

# Why a slot is (not) filling: among the active entries, how many each rule turns away (a patient
# may fail several), and how many patients pass them all. "IS NOT TRUE", not "NOT": a rule over a
# NULL column is NULL, which the selection's WHERE treats as "no", so it excludes here too.
EXCLUDING_RULES = [("provider", MATCHES_PROVIDER), *ENTRY_RULE_LIST[1:], *OFFER_RULE_LIST]
EXPLAIN_SQL = sa.text(
    "SELECT count(*) AS active_entries, "
    + "".join(
        f"count(*) FILTER (WHERE ({rule}) IS NOT TRUE) AS {name}, "
        for name, rule in EXCLUDING_RULES
    )
    + f"""count(DISTINCT w.patient_id) FILTER (WHERE {MATCHES_PROVIDER} AND {ENTRY_RULES}
                                               AND {OFFER_RULES}) AS eligible_patients
    FROM waitlist_entries w JOIN patients p ON p.id = w.patient_id
    WHERE w.status = 'active'"""
)


def explain(session: Session, params: dict[str, Any]) -> dict[str, Any]:
    """Active entries, how many each rule excludes, and the patients still eligible."""
    row = session.execute(EXPLAIN_SQL, params).one()._asdict()
    return {
        "active_entries": row.pop("active_entries"),
        "eligible_patients": row.pop("eligible_patients"),
        "excluded_by": row,
    }


_COLUMNS = """s.entry_id, s.patient_id, s.joined_at, s.urgent, s.boost,
               s.urgent + s.boost + s.appointment + s.waiting AS score"""
_RANKING = "score DESC, s.joined_at, s.entry_id"


ENTRIES = "waitlist_entries w"
# Entries naming a provider, one row each in waitlist_entry_providers (kept by a trigger).
NAMED_ENTRIES = "waitlist_entry_providers pp JOIN waitlist_entries w ON w.id = pp.entry_id"


def _scored(where: str, walk_order: str = "", source: str = ENTRIES) -> sa.TextClause:
    """Eligible entries matching `where`; with walk_order, the first :page of them in that order."""
    order = f"ORDER BY {walk_order} LIMIT :page" if walk_order else ""
    return sa.text(
        f"""
        SELECT {_COLUMNS}
        FROM (
            SELECT w.id AS entry_id, w.patient_id, w.joined_at, {SCORE_PARTS}
            FROM {source}
            JOIN patients p ON p.id = w.patient_id
            WHERE {where} AND {ENTRY_RULES} AND {OFFER_RULES}
            {order}
        ) s
        """
    )


# The plain definition: score every eligible entry. Used by tests as the reference.
EXHAUSTIVE_SQL = sa.text(_scored(MATCHES_PROVIDER).text + f" ORDER BY {_RANKING} LIMIT :limit")


@dataclass(frozen=True)
class Match:
    """One way an entry can match the slot, with the rows and partial indexes that walk it."""

    source: str
    condition: str
    alias: str  # the table whose urgent / manual_boost / joined_at columns the indexes hold
    id_column: str


MATCHES = {
    "named": Match(
        NAMED_ENTRIES, "pp.provider_id = :provider_id AND pp.status = 'active'", "pp", "entry_id"
    ),
    "type": Match(ENTRIES, "w.provider_type = :provider_type", "w", "id"),
    "anyone": Match(ENTRIES, "w.provider_ids IS NULL AND w.provider_type IS NULL", "w", "id"),
}
# (name, condition, lowest boost in the group); the conditions match the indexes' predicates
GROUPS = (
    ("urgent", "{a}.urgent", 0),
    ("boosted", "NOT {a}.urgent AND {a}.manual_boost > 0", 1),
    ("plain", "NOT {a}.urgent AND {a}.manual_boost = 0", 0),
)


@dataclass(frozen=True)
class Walk:
    """Entries of one match and static group, in the order of a partial index (ix_*_walk_*)."""

    sql: sa.TextClause
    match: str
    lowest_boost: int  # the walk holds no entry with a smaller boost than this


WALKS = [
    Walk(
        _scored(
            f"{m.condition} AND {group.format(a=m.alias)}",
            f"{m.alias}.manual_boost DESC, {m.alias}.joined_at, {m.alias}.{m.id_column}",
            m.source,
        ),
        name,
        lowest,
    )
    for name, m in MATCHES.items()
    for _, group, lowest in GROUPS
]
# The latest current appointment among a walk's entries caps the appointment points any of them
# can have; without it, a list where nobody has far-off appointments would be walked to the end.
LATEST_APPOINTMENT_SQL = {
    "named": sa.text(
        "SELECT max(pp.current_appointment_at) FROM waitlist_entry_providers pp"
        " WHERE pp.provider_id = :provider_id AND pp.status = 'active'"
    ),
    "type": sa.text(
        "SELECT max(w.current_appointment_at) FROM waitlist_entries w"
        " WHERE w.status = 'active' AND w.provider_type = :provider_type"
    ),
    "anyone": sa.text(
        "SELECT max(w.current_appointment_at) FROM waitlist_entries w"
        " WHERE w.status = 'active' AND w.provider_ids IS NULL AND w.provider_type IS NULL"
    ),
}
# One round trip for what every selection needs first: the latest appointment per match ...
LATEST_APPOINTMENTS_SQL = sa.text(
    "SELECT " + ", ".join(f"({q.text}) AS {name}" for name, q in LATEST_APPOINTMENT_SQL.items())
)
# ... and the first page of every walk, tagged with the walk's index.
FIRST_PAGES_SQL = sa.text(
    " UNION ALL ".join(
        f"(SELECT {n} AS walk, f.* FROM ({walk.sql.text}) f)" for n, walk in enumerate(WALKS)
    )
)
SCORE_PARTS_SQL = sa.text(f"SELECT {SCORE_PARTS} FROM waitlist_entries w WHERE w.id = :entry_id")


@dataclass(frozen=True)
class _Row:
    candidate: Candidate
    static: int
    boost: int


def _rows(result: Any) -> list[_Row]:
    return [
        _Row(
            Candidate(r.entry_id, r.patient_id, int(r.score), r.joined_at),
            int(r.urgent) + int(r.boost),
            int(r.boost),
        )
        for r in result
    ]


def best_distinct_patients(candidates: list[Candidate], limit: int) -> list[Candidate]:
    picked: list[Candidate] = []
    seen: set[int] = set()
    for candidate in sorted(candidates, key=lambda c: c.rank_key):
        if candidate.patient_id not in seen:
            seen.add(candidate.patient_id)
            picked.append(candidate)
            if len(picked) == limit:
                break
    return picked


def exhaustive(session: Session, params: dict[str, Any], limit: int) -> list[Candidate]:
    result = session.execute(EXHAUSTIVE_SQL, {**params, "limit": limit + SPARE})
    return best_distinct_patients([row.candidate for row in _rows(result)], limit)


def select(
    session: Session, params: dict[str, Any], scoring: model.ScoringPolicy, limit: int
) -> list[Candidate]:
    """The top `limit` eligible entries (one per patient), without scoring the whole list."""
    wanted = limit + SPARE
    found: dict[int, Candidate] = {}
    now: datetime = params["now"]

    def appointment_points(appointment: datetime | None) -> int:
        for minimum_days, points in scoring.appointment_tiers:
            if appointment is not None and appointment >= now + timedelta(days=minimum_days):
                return points
        return 0

    latest = session.execute(LATEST_APPOINTMENTS_SQL, params).one()._mapping
    max_appointment_by_match = {match: appointment_points(latest[match]) for match in MATCHES}

    def waiting_points(joined_at: datetime) -> int:
        waited_days = max(0, (now - joined_at).days)
        return min(
            scoring.max_waiting_points, (waited_days // 30) * scoring.points_per_30_days_waiting
        )

    def nothing_left_can_win(last: _Row, max_appointment: int, lowest_boost: int) -> bool:
        ranked = sorted(found.values(), key=lambda c: c.rank_key)
        if len(ranked) < wanted:
            return False
        kth = ranked[wanted - 1]
        # entries of a lower level may come in any join order, so they could win a tie
        lower_level = last.static - 1 + max_appointment + scoring.max_waiting_points
        if last.boost > lowest_boost and kth.score <= lower_level:
            return False
        # unseen entries of the same level come later in join order, so they lose a tie
        same_level = last.static + max_appointment + waiting_points(last.candidate.joined_at)
        return kth.score > same_level or (
            kth.score == same_level
            and (kth.joined_at, kth.entry_id) <= (last.candidate.joined_at, last.candidate.entry_id)
        )

    first_pages: list[list[Any]] = [[] for _ in WALKS]
    for result_row in session.execute(FIRST_PAGES_SQL, {**params, "page": PAGE}):
        first_pages[result_row.walk].append(result_row)
    for number, walk in enumerate(WALKS):
        max_appointment = max_appointment_by_match[walk.match]
        page = PAGE
        while True:
            if page == PAGE:
                # UNION ALL keeps no order: put the page back in walk order
                rows = sorted(
                    _rows(first_pages[number]),
                    key=lambda r: (-r.boost, r.candidate.joined_at, r.candidate.entry_id),
                )
            else:
                rows = _rows(session.execute(walk.sql, {**params, "page": page}))
            for row in rows:
                found[row.candidate.entry_id] = row.candidate
            if len(rows) < page:
                break  # walked to the end
            if nothing_left_can_win(rows[-1], max_appointment, walk.lowest_boost):
                break
            page *= 4  # walk further: re-read from the start with a longer page
    return best_distinct_patients(list(found.values()), limit)
