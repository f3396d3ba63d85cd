"""Fill figures for a span of clinic days: does the waitlist work?

Definitions (the README's "Metrics" repeats them for staff):
- a slot counts on the clinic day it was entered (`CLINIC_TIMEZONE`), whatever happened later;
- `cancellations`: slots entered; `filled`: those a patient took; `aborted`: those staff closed;
  `fill_rate`: filled / cancellations (an aborted slot is an unfilled one);
- minutes to fill: from entry to the winning yes, median and 90th percentile, interpolated
  (PostgreSQL's percentile_cont);
- `offers_per_fill`: offers whose text left, for the span's slots, per filled slot;
- `acceptance_rate`: accepted / offers whose text left;
- `opt_outs`: opt-outs recorded that day, by any patient;
- `delivery_failures`: offers for the span's slots that Twilio could not deliver to the number;
- `time_to_fill`: the span's fills counted by minutes to fill, in the buckets of FILL_BUCKETS
  (each from the previous bound, included, up to its own, excluded; the last one is open-ended).
A ratio with nothing to divide by is null.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from waitlist.service_layer.unit_of_work import UnitOfWork

MAX_DAYS = 366

# GROUPING SETS ((day), ()): one row per day and one for the whole span, in one pass.
SLOTS = sa.text(
    """
    SELECT day, count(*) AS cancellations,
           count(*) FILTER (WHERE status = 'filled') AS filled,
           count(*) FILTER (WHERE status = 'aborted') AS aborted,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) FILTER (WHERE status = 'filled')
               AS median_minutes_to_fill,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) FILTER (WHERE status = 'filled')
               AS p90_minutes_to_fill
    FROM (SELECT (created_at AT TIME ZONE :tz)::date AS day, status::text AS status,
                 extract(epoch FROM closed_at - created_at) / 60 AS minutes
          FROM cancellations WHERE created_at >= :start AND created_at < :end) AS c
    GROUP BY GROUPING SETS ((day), ())
    """
)
OFFERS = sa.text(
    """
    SELECT (c.created_at AT TIME ZONE :tz)::date AS day,
           count(*) FILTER (WHERE o.sent_at IS NOT NULL) AS offers_sent,
           count(*) FILTER (WHERE o.state = 'accepted') AS accepted,
           count(*) FILTER (WHERE o.state = 'failed') AS delivery_failures
    FROM offers o JOIN cancellations c ON c.id = o.cancellation_id
    WHERE c.created_at >= :start AND c.created_at < :end
    GROUP BY GROUPING SETS ((1), ())
    """
)
# Upper bounds in minutes, then a last open-ended bucket; labels are what the console prints
FILL_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (15, "under 15 min"),
    (30, "15-30 min"),
    (60, "30-60 min"),
    (120, "1-2 h"),
    (240, "2-4 h"),
    (480, "4-8 h"),
    (1440, "8-24 h"),
    (None, "a day or more"),
)
# width_bucket over the bounds: 0 below the first, k from bound k (1-based) up to the next one
TIME_TO_FILL = sa.text(
    """
    SELECT width_bucket(extract(epoch FROM closed_at - created_at) / 60, :bounds) AS bucket,
           count(*) AS filled
    FROM cancellations
    WHERE status = 'filled' AND created_at >= :start AND created_at < :end
    GROUP BY 1
    """
).bindparams(sa.bindparam("bounds", type_=sa.ARRAY(sa.Float)))
OPT_OUTS = sa.text(
    """
    SELECT (occurred_at AT TIME ZONE :tz)::date AS day, count(*) AS opt_outs
    FROM audit_events
    WHERE kind = 'patient_opted_out' AND occurred_at >= :start AND occurred_at < :end
    GROUP BY GROUPING SETS ((1), ())
    """
)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _minutes(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _figures(slots: dict, offers: dict, opt_outs: int) -> dict[str, Any]:
    cancellations, filled = slots.get("cancellations", 0), slots.get("filled", 0)
    sent = offers.get("offers_sent", 0)
    return {
        "cancellations": cancellations,
        "filled": filled,
        "aborted": slots.get("aborted", 0),
        "fill_rate": _ratio(filled, cancellations),
        "median_minutes_to_fill": _minutes(slots.get("median_minutes_to_fill")),
        "p90_minutes_to_fill": _minutes(slots.get("p90_minutes_to_fill")),
        "offers_sent": sent,
        "offers_per_fill": _ratio(sent, filled),
        "acceptance_rate": _ratio(offers.get("accepted", 0), sent),
        "opt_outs": opt_outs,
        "delivery_failures": offers.get("delivery_failures", 0),
    }


def fill_stats(uow: UnitOfWork, first: date, last: date, tz: ZoneInfo) -> dict[str, Any]:
    """The figures for clinic days `first` to `last` (both included), and for each day."""
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    params = {"tz": str(tz), "start": start, "end": end}
    with uow:
        slots = {r.day: r._asdict() for r in uow.session.execute(SLOTS, params)}
        offers = {r.day: r._asdict() for r in uow.session.execute(OFFERS, params)}
        opt_outs = {r.day: r.opt_outs for r in uow.session.execute(OPT_OUTS, params)}
        bounds = [float(bound) for bound, _ in FILL_BUCKETS if bound is not None]
        buckets = {
            r.bucket: r.filled
            for r in uow.session.execute(TIME_TO_FILL, {**params, "bounds": bounds})
        }
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": str(tz),
        **_figures(slots.get(None, {}), offers.get(None, {}), opt_outs.get(None, 0)),
        "time_to_fill": [
            {"label": label, "up_to_minutes": bound, "filled": buckets.get(n, 0)}
            for n, (bound, label) in enumerate(FILL_BUCKETS)
        ],
        "by_day": [
            {
                "day": day.isoformat(),
                **_figures(slots.get(day, {}), offers.get(day, {}), opt_outs.get(day, 0)),
            }
            for day in days
        ],
    }
