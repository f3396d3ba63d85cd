"""A patient's SMS conversation, read from the assistant's tracker store.

Rasa's SQLTrackerStore writes one row per conversation event to the `events` table of the same
database (endpoints.yml): the patient's texts are `user` events, the assistant's are `bot` events,
both with the text inside the JSON `data`. The conversation id is the patient's phone number.

The backend only reads this table, and never depends on it: before the assistant has run there is
no table, and the patient page then says so instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

# Offers and notices start through trigger_intent, which stores a user event nobody typed
_EXTERNAL_PREFIX = "EXTERNAL_"

_LAST_TEXTS = sa.text(
    "SELECT id, type_name, timestamp, intent_name, data FROM ("
    "  SELECT id, type_name, timestamp, intent_name, data FROM events"
    "  WHERE sender_id = :sender AND type_name IN ('user', 'bot')"
    "  ORDER BY id DESC LIMIT :limit"
    ") AS last ORDER BY id"
)


@dataclass(frozen=True)
class TranscriptLine:
    at: datetime
    direction: str  # "in" from the patient, "out" from the assistant
    text: str
    intent: str | None = None


class Transcripts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def available(self) -> bool:
        return self.session.execute(sa.text("SELECT to_regclass('events')")).scalar() is not None

    def last_texts(self, phone: str, limit: int) -> list[TranscriptLine]:
        """The last `limit` texts of the conversation with this phone, oldest first."""
        lines: list[TranscriptLine] = []
        for row in self.session.execute(_LAST_TEXTS, {"sender": phone, "limit": limit * 2}):
            line = _line(row.type_name, row.timestamp, row.intent_name, row.data)
            if line is not None:
                lines.append(line)
        return lines[-limit:]


def _line(
    kind: str, timestamp: float, intent: str | None, raw: str | None
) -> TranscriptLine | None:
    try:
        data: dict[str, Any] = json.loads(raw or "{}")
    except ValueError:
        return None
    text = data.get("text")
    if not isinstance(text, str) or not text:
        return None
    at = datetime.fromtimestamp(float(timestamp), UTC)
    if kind == "bot":
        return TranscriptLine(at=at, direction="out", text=text)
    if (intent or "").startswith(_EXTERNAL_PREFIX) or text.startswith("EXTERNAL: "):
        return None
    return TranscriptLine(at=at, direction="in", text=text, intent=intent)
