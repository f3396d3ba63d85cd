"""Helpers for action tests: a scripted fake backend and tracker builders."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.backend_client import BackendReply, BackendUnavailable
from actions.language import detect_language

# The reply API's contract, the same file the backend's tests hold the backend to.
CONTRACT = json.loads(
    (Path(__file__).resolve().parents[2] / "contracts" / "reply_api.json").read_text()
)
PHONE = "+15551234567"
NEW_YORK = ZoneInfo("America/New_York")
# A Wednesday morning in the clinic's zone.
FIXED_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK)

OFFER: dict[str, Any] = {
    "offer_id": 12,
    "cancellation_id": 4,
    "state": "pending",
    "slot_start": "2026-12-01T15:30:00-05:00",
    "slot_end": "2026-12-01T16:00:00-05:00",
    "slot_date": "Tue Dec 1",
    "slot_time": "3:30 PM",
    "location": "Main Street Clinic",
    "hold_minutes": 7,
    "expires_at": "2026-12-01T10:07:00-05:00",
    "minutes_left": 5,
}
PATIENT: dict[str, Any] = {"language": "en", "opted_out": False, "on_waitlist": True}


def answer(
    outcome: str,
    offer: dict[str, Any] | None = None,
    patient: dict[str, Any] | None = PATIENT,
    **extra: Any,
) -> BackendReply:
    """A backend answer in the contract's shape."""
    return BackendReply.from_json({"outcome": outcome, "offer": offer, "patient": patient, **extra})


class FakeBackend:
    """Records calls and plays back scripted answers (or failures).

    It fails on any unscripted call, and on a scripted answer the real backend could not give for
    that call (contracts/reply_api.json), unless the test marks it `off_contract` on purpose.
    """

    def __init__(self, *answers: BackendReply | Exception, off_contract: bool = False) -> None:
        self._answers = list(answers)
        self._off_contract = off_contract
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _next(self, call: str) -> BackendReply:
        if not self._answers:
            raise AssertionError("unexpected backend call")
        item = self._answers.pop(0)
        if isinstance(item, Exception):
            raise item
        if not self._off_contract:
            jsonschema.validate(item.raw, CONTRACT["answer_schema"])
            outcomes = CONTRACT["calls"][call]["outcomes"]
            assert item.outcome in outcomes, f"{call} never answers {item.outcome!r}"
        return item

    async def reply(self, kind: str, phone: str, message_id: str, **fields: Any) -> BackendReply:
        self.calls.append((kind, {"phone": phone, "message_id": message_id, **fields}))
        allowed = set(CONTRACT["calls"][kind]["fields"]) | {"language"}
        assert set(fields) <= allowed, f"{kind} takes no {set(fields) - allowed}"
        return self._next(kind)

    async def current_offer(self, phone: str) -> BackendReply:
        self.calls.append(("offers/current", {"phone": phone}))
        return self._next("offers/current")


def sent(message: str, /, **fields: Any) -> dict[str, Any]:
    """A reply call's body for the latest message `text`: phone, message id, the fields, and the
    language when the words make it clear (tested on its own in test_safety_order.py)."""
    body: dict[str, Any] = {"phone": PHONE, "message_id": "SM0001", **fields}
    language = detect_language(message)
    if language:
        body["language"] = language
    return body


def down() -> BackendUnavailable:
    return BackendUnavailable("GET /x: ConnectError after 3 attempts")


def make_tracker(
    text: str = "yes",
    intent: str = "accept",
    confidence: float = 0.97,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    message_id: str | None = "SM0001",
    sender_id: str = PHONE,
) -> Tracker:
    """A tracker whose latest message is a patient's SMS."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "message_id": message_id,
    }
    all_slots = {
        "language": None,
        "clinic_name": "Riverside Clinic",
        "clinic_phone": "555-0100",
        "awaiting_confirmation": False,
        "awaiting_defer_date": False,
    }
    all_slots.update(slots or {})
    events = [{"event": "user", "timestamp": 1764082800.0, "text": text, "parse_data": latest}]
    return Tracker(sender_id, all_slots, latest, events, False, None, {}, "action_listen")


def run_action(action: Action, tracker: Tracker) -> tuple[list[dict[str, Any]], list[EventType]]:
    """Runs an action; returns (messages, events)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("response") for m in messages]


def slots_set(events: list[EventType]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
