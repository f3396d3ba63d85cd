"""Shared plumbing for the actions: one backend call, one chosen response."""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend_client import (
    BackendClient,
    BackendReply,
    BackendUnavailable,
    ReplyApi,
    mask_phone,
)
from actions.language import detect_language

logger = logging.getLogger(__name__)

# Slots the offer templates read; filled from the backend's `offer` object.
OFFER_SLOTS = ("offer_id", "slot_date", "slot_time", "location", "hold_minutes")

UTTER_BACKEND_DOWN = "utter_backend_down"
UTTER_UNKNOWN_PATIENT = "utter_unknown_patient"
UTTER_NOT_ON_WAITLIST = "utter_not_on_waitlist"


def phone_of(tracker: Tracker) -> str:
    """The conversation id is the patient's E.164 number (Twilio `From`)."""
    return tracker.sender_id


def message_id_of(tracker: Tracker) -> str:
    """The inbound MessageSid (the backend deduplicates on it).

    Without one, derive a stable id from the user turn so a retried action
    cannot act twice.
    """
    message_id = (tracker.latest_message or {}).get("message_id")
    if message_id:
        return str(message_id)
    last_user = next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})
    seed = f"{tracker.sender_id}:{last_user.get('timestamp', '')}:{len(tracker.events)}"
    return "rasa-" + hashlib.sha1(seed.encode("utf-8")).hexdigest()[:24]


def written_language(tracker: Tracker) -> str | None:
    """The language the latest message is written in ("en"/"es"), when its words make it clear."""
    text = latest_text(tracker)
    return None if text.startswith("/") else detect_language(text)


def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def latest_intent(tracker: Tracker) -> dict[str, Any]:
    return (tracker.latest_message or {}).get("intent") or {}


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    """Values of one entity in the latest message, in order."""
    return [
        str(e.get("value"))
        for e in (tracker.latest_message or {}).get("entities") or []
        if e.get("entity") == entity and e.get("value")
    ]


def offer_template_values(offer: dict[str, Any] | None) -> dict[str, Any]:
    """Template variables from the fresh offer.

    Rasa renders an action's responses with the slots as they were before the
    action, so fresh values travel as template variables as well as SlotSets.
    """
    if not offer:
        return {}
    values = {name: offer.get(name) for name in OFFER_SLOTS if offer.get(name) is not None}
    if offer.get("minutes_left") is not None:
        values["minutes_left"] = offer["minutes_left"]
    return {name: str(value) for name, value in values.items()}


def reply_events(reply: BackendReply) -> list[EventType]:
    """Remember the patient's language and the offer for later turns."""
    events: list[EventType] = []
    if reply.language:
        events.append(SlotSet("language", reply.language))
    for name, value in offer_template_values(reply.offer).items():
        if name in OFFER_SLOTS:
            events.append(SlotSet(name, value))
    return events


def clear_pending_questions() -> list[EventType]:
    """The patient has answered; forget the confirm/when questions we asked."""
    return [SlotSet("awaiting_confirmation", False), SlotSet("awaiting_defer_date", False)]


def on_waitlist(reply: BackendReply) -> bool:
    """Unknown means yes: the "still on the list" wording is the common case."""
    if reply.patient is None:
        return True
    return bool(reply.patient.get("on_waitlist", True))


class TurnNotApplied(Exception):
    """Raised by a silent action whose backend call failed: the action server answers 500, Rasa
    logs the failed action, and the Twilio channel runs the turn again later."""


class BackendAction(Action, ABC):
    """An action that makes one backend call and voices its outcome.

    Never crashes and never stays silent: any failure becomes
    `utter_backend_down` and a log line (masked phone, no message body).
    """

    def __init__(
        self,
        client: ReplyApi | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        # Tests pin "now"; None means the clinic's current time.
        self._clock = clock

    def now(self) -> datetime | None:
        return self._clock() if self._clock else None

    @property
    def client(self) -> ReplyApi:
        if self._client is None:
            self._client = BackendClient()
        return self._client

    async def reply(self, tracker: Tracker, kind: str, **fields: Any) -> BackendReply:
        """One reply-API call for the latest message: its phone, its message id (so a retry
        has no second effect) and, when the patient's words made it clear, their language."""
        language = written_language(tracker)
        if language:
            fields["language"] = language
        return await self.client.reply(kind, phone_of(tracker), message_id_of(tracker), **fields)

    async def handoff(self, tracker: Tracker, reason: str) -> BackendReply:
        """Tell staff to call the patient back; their words go with it, for the call-back queue."""
        return await self.reply(tracker, "handoff", reason=reason, text=latest_text(tracker)[:1600])

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[EventType]:
        try:
            return await self.handle(dispatcher, tracker, domain)
        except BackendUnavailable as exc:
            logger.error(
                "%s: backend unavailable (phone %s): %s",
                self.name(),
                mask_phone(tracker.sender_id),
                exc,
            )
        except Exception:  # noqa: BLE001 - a patient must always get an answer
            logger.exception("%s failed (phone %s)", self.name(), mask_phone(tracker.sender_id))
        return self.on_failure(dispatcher)

    def on_failure(self, dispatcher: CollectingDispatcher) -> list[EventType]:
        dispatcher.utter_message(response=UTTER_BACKEND_DOWN)
        return []

    def unexpected(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, reply: BackendReply
    ) -> list[EventType]:
        """An outcome the contract does not list for this call: say we're stuck."""
        logger.error(
            "%s: unexpected outcome %r (phone %s)",
            self.name(),
            reply.outcome,
            mask_phone(tracker.sender_id),
        )
        return self.on_failure(dispatcher)

    @abstractmethod
    async def handle(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[EventType]:
        """Make the backend call and utter the chosen response."""


def env_float(name: str, default: float) -> float:
    """A tunable number from the environment, falling back on bad input."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        logger.warning("%s is not a number; using %s", name, default)
        return default
