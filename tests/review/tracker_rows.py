"""Event rows the way Rasa's SQLTrackerStore.save writes them, for the review tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

# rasa/core/tracker_store.py, SQLTrackerStore.SQLEvent: what Rasa 3.6 creates on PostgreSQL
EVENTS_DDL = """
CREATE TABLE events (
    id SERIAL PRIMARY KEY,
    sender_id VARCHAR(255) NOT NULL,
    type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT,
    intent_name VARCHAR(255),
    action_name VARCHAR(255),
    data TEXT
);
CREATE INDEX ix_events_sender_id ON events (sender_id);
"""


@dataclass
class Tracker:
    """Builds event rows the way SQLTrackerStore.save writes them (event.as_dict() as JSON)."""

    rows: list[tuple[float, str, str, str | None, str | None, dict[str, Any]]] = field(
        default_factory=list
    )
    _sids: int = 0

    def _add(
        self,
        phone: str,
        at: datetime,
        type_name: str,
        intent: str | None,
        action: str | None,
        data: dict[str, Any],
    ) -> None:
        # events of one turn share a second; the micro-offsets keep Rasa's order when sorted
        stamp = at.timestamp() + len(self.rows) * 1e-6
        self.rows.append((stamp, phone, type_name, intent, action, {**data, "timestamp": stamp}))

    def offer(self, phone: str, at: datetime) -> None:
        """What the backend's trigger_intent leaves: an external user event and utter_offer."""
        self._add(
            phone,
            at,
            "user",
            "EXTERNAL_offer",
            None,
            {
                "event": "user",
                "metadata": {"is_external": True},
                "text": "EXTERNAL: EXTERNAL_offer",
                "parse_data": {
                    "intent": {"name": "EXTERNAL_offer"},
                    "entities": [],
                    "message_id": None,
                    "metadata": {},
                },
                "input_channel": None,
                "message_id": None,
            },
        )
        self.answer(phone, at, "utter_offer", ["utter_offer"])

    def text(
        self,
        phone: str,
        at: datetime,
        body: str,
        intent: str,
        confidence: float,
        ranking: list[tuple[str, float]] | None = None,
        sid: str | None = None,
    ) -> None:
        """An inbound SMS as the Twilio connector hands it to Rasa, after NLU."""
        if sid is None:
            self._sids += 1
            sid = f"SM{self._sids:032d}"
        ranking = ranking or [(intent, confidence)]
        parse_data = {
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
            "text": body,
            "message_id": sid,
            "metadata": {"twilio": {"message_sid": sid, "num_media": 0, "attempt": 1}},
            "intent_ranking": [{"name": name, "confidence": conf} for name, conf in ranking],
        }
        self._add(
            phone,
            at,
            "user",
            intent,
            None,
            {
                "event": "user",
                "metadata": {"twilio": {"message_sid": sid, "num_media": 0, "attempt": 1}},
                "text": body,
                "parse_data": parse_data,
                "input_channel": "twilio",
                "message_id": sid,
            },
        )
        self._add(
            phone,
            at,
            "user_featurization",
            None,
            None,
            {
                "event": "user_featurization",
                "use_text_for_featurization": False,
            },
        )

    def answer(self, phone: str, at: datetime, action: str, said: list[str]) -> None:
        """The action that answers a text, the responses it sent, then action_listen."""
        self._add(
            phone,
            at,
            "action",
            None,
            action,
            {
                "event": "action",
                "name": action,
                "policy": "RulePolicy",
                "confidence": 1.0,
                "action_text": None,
                "hide_rule_turn": False,
            },
        )
        for response in said:
            self._add(
                phone,
                at,
                "bot",
                None,
                None,
                {
                    "event": "bot",
                    "metadata": {"utter_action": response},
                    "text": f"(wording of {response})",
                    "data": {"elements": None},
                },
            )
        self._add(
            phone,
            at + timedelta(milliseconds=5),
            "action",
            None,
            "action_listen",
            {
                "event": "action",
                "name": "action_listen",
                "policy": None,
                "confidence": None,
                "action_text": None,
                "hide_rule_turn": False,
            },
        )

    def save(self, url: str) -> None:
        # conversations interleave in the table, as they do when several patients text at once
        with psycopg.connect(url, autocommit=True) as conn:
            for stamp, phone, type_name, intent, action, data in sorted(
                self.rows, key=lambda row: row[0]
            ):
                conn.execute(
                    "INSERT INTO events (sender_id, type_name, timestamp, intent_name,"
                    " action_name, data) VALUES (%s, %s, %s, %s, %s, %s)",
                    (phone, type_name, stamp, intent, action, json.dumps(data)),
                )
