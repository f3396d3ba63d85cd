"""Messaging consent: opt out (STOP and natural phrasings) and opt back in."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    UTTER_UNKNOWN_PATIENT,
    BackendAction,
    clear_pending_questions,
    message_id_of,
    phone_of,
    reply_events,
)


class ActionOptOut(BackendAction):
    """Stop all messages; the reply says how to resume."""

    def name(self) -> str:
        return "action_opt_out"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.client.reply("opt_out", phone_of(tracker), message_id_of(tracker))
        if reply.outcome not in ("opted_out", "unknown_patient"):
            return self.unexpected(dispatcher, tracker, reply)
        # An unknown number gets the same confirmation: it will not be texted either way.
        dispatcher.utter_message(response="utter_opted_out")
        return reply_events(reply) + clear_pending_questions()


class ActionOptIn(BackendAction):
    """START / UNSTOP: messages resume."""

    def name(self) -> str:
        return "action_opt_in"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.client.reply("opt_in", phone_of(tracker), message_id_of(tracker))
        responses = {
            "opted_in": "utter_opted_in",
            "unknown_patient": UTTER_UNKNOWN_PATIENT,
            # this number was reported as reaching the wrong person: only staff can resume texts
            "wrong_number": UTTER_UNKNOWN_PATIENT,
        }
        if reply.outcome not in responses:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=responses[reply.outcome])
        return reply_events(reply)
