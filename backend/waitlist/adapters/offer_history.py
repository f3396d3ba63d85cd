"""The clinic's own recent answers to offers, read by BATCH_MODE=adaptive for its estimate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

# Only offers the patient could answer to the end count: a pending offer has not finished, and a
# withdrawn one (the slot went to someone else first), a failed or a released one was cut short,
# so counting them as "no" would make patients look less willing than they are.
RECENT_ANSWERS = sa.text(
    """
    SELECT count(*) AS offers,
           count(*) FILTER (WHERE state = 'accepted') AS accepted,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM responded_at - sent_at)
           ) FILTER (WHERE state = 'accepted' AND responded_at IS NOT NULL) AS reply_seconds
    FROM offers
    WHERE sent_at > :since AND sent_at <= :now
      AND state IN ('accepted', 'declined', 'expired')
    """
)


@dataclass(frozen=True)
class RecentAnswers:
    offers: int
    accepted: int
    reply: timedelta | None  # median time an accepting patient took to say yes


def recent_answers(session: Session, since: datetime, now: datetime) -> RecentAnswers:
    row = session.execute(RECENT_ANSWERS, {"since": since, "now": now}).one()
    reply = timedelta(seconds=float(row.reply_seconds)) if row.reply_seconds is not None else None
    return RecentAnswers(offers=row.offers, accepted=row.accepted, reply=reply)
