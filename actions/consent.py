"""Messaging consent: opt out (STOP and natural phrasings) and opt back in."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    UTTER_UNKNOWN_PATIENT,
    BackendAction,
    TurnNotApplied,
    clear_pending_questions,
    reply_events,
)


class ActionOptOut(BackendAction):
    """Stop all messages; the reply says how to resume."""

    def name(self) -> str:
        return "action_opt_out"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.reply(tracker, "opt_out")
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
        reply = await self.reply(tracker, "opt_in")
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


class ActionRecordCarrierOptOut(BackendAction):
    """Twilio's Advanced Opt-Out already answered a STOP: record it and say nothing more, so the
    patient never gets two answers (and no text may follow a STOP anyway)."""

    def name(self) -> str:
        return "action_record_carrier_opt_out"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.reply(tracker, "opt_out")
        if reply.outcome not in ("opted_out", "unknown_patient"):
            return self.unexpected(dispatcher, tracker, reply)
        return reply_events(reply) + clear_pending_questions()

    def on_failure(self, dispatcher: CollectingDispatcher) -> list[EventType]:
        # Silent even when the backend is down (Twilio has answered the patient). Failing the
        # action makes the Twilio channel run this turn again until the opt-out is recorded.
        raise TurnNotApplied("the opt-out could not be recorded yet")


class ActionRecordCarrierOptIn(BackendAction):
    """Twilio's Advanced Opt-Out already answered a START: record it, say nothing more."""

    def name(self) -> str:
        return "action_record_carrier_opt_in"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.reply(tracker, "opt_in")
        if reply.outcome not in ("opted_in", "wrong_number", "unknown_patient"):
            return self.unexpected(dispatcher, tracker, reply)
        return reply_events(reply)

    def on_failure(self, dispatcher: CollectingDispatcher) -> list[EventType]:
        raise TurnNotApplied("the opt-in could not be recorded yet")
