"""Waitlist preferences: availability changes and leaving the list."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.availability import parse_availability
from actions.common import (
    UTTER_NOT_ON_WAITLIST,
    UTTER_UNKNOWN_PATIENT,
    BackendAction,
    clear_pending_questions,
    latest_text,
    reply_events,
)


class ActionUpdateAvailability(BackendAction):
    """ "Only mornings", "not Fridays": send what we understood, else ask."""

    def name(self) -> str:
        return "action_update_availability"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        availability = parse_availability(latest_text(tracker), now=self.now())
        if availability.is_empty():
            # Nothing concrete to send; guessing would silently change their offers.
            dispatcher.utter_message(response="utter_ask_availability")
            return []
        reply = await self.reply(
            tracker,
            "availability",
            **availability.as_fields(),
        )
        responses = {
            "availability_updated": "utter_availability_updated",
            "not_on_waitlist": UTTER_NOT_ON_WAITLIST,
            "unknown_patient": UTTER_UNKNOWN_PATIENT,
        }
        if reply.outcome not in responses:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=responses[reply.outcome])
        return reply_events(reply)


class ActionLeaveWaitlist(BackendAction):
    """ "Take me off the list": leave the waitlist (texts about it stop too)."""

    def name(self) -> str:
        return "action_leave_waitlist"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.reply(tracker, "leave")
        responses = {
            "left_waitlist": "utter_left_waitlist",
            "not_on_waitlist": UTTER_NOT_ON_WAITLIST,
            "unknown_patient": UTTER_UNKNOWN_PATIENT,
        }
        if reply.outcome not in responses:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=responses[reply.outcome])
        return reply_events(reply) + clear_pending_questions()
