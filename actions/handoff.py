"""Hand-offs to staff: talk to a person, wrong number, emergencies."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.backend_client import mask_phone
from actions.common import (
    UTTER_UNKNOWN_PATIENT,
    BackendAction,
    clear_pending_questions,
    reply_events,
)

logger = logging.getLogger(__name__)


class ActionTalkToPerson(BackendAction):
    """Staff see the request and call back."""

    def name(self) -> str:
        return "action_talk_to_person"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.handoff(tracker, "talk_to_person")
        responses = {"handoff_recorded": "utter_handoff", "unknown_patient": UTTER_UNKNOWN_PATIENT}
        if reply.outcome not in responses:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=responses[reply.outcome])
        return reply_events(reply)


class ActionWrongNumber(BackendAction):
    """Not the patient's phone: the backend records it and opts the number out."""

    def name(self) -> str:
        return "action_wrong_number"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.handoff(tracker, "wrong_number")
        if reply.outcome not in ("handoff_recorded", "unknown_patient"):
            return self.unexpected(dispatcher, tracker, reply)
        # An unknown number is not texted anyway, so the same apology fits.
        dispatcher.utter_message(response="utter_wrong_number")
        return clear_pending_questions()


class ActionLogEmergency(BackendAction):
    """Records an emergency for staff. The 911 reply (`utter_emergency`) was
    already sent by the rule before this action, so it never depends on the
    backend being up."""

    def name(self) -> str:
        return "action_log_emergency"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.handoff(tracker, "emergency")
        if reply.outcome not in ("handoff_recorded", "unknown_patient"):
            logger.error(
                "emergency handoff: unexpected outcome %r (phone %s)",
                reply.outcome,
                mask_phone(tracker.sender_id),
            )
        return []

    def on_failure(self, dispatcher: CollectingDispatcher) -> list[EventType]:
        # The patient already has the 911 message; a "try again later" would
        # only confuse. The failure is logged by the base class.
        return []


class ActionBereavement(BackendAction):
    """The patient has died: condolences, never the 911 text; the number is never texted again
    and staff are told (the backend records a handoff and silences the number)."""

    def name(self) -> str:
        return "action_bereavement"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.handoff(tracker, "bereavement")
        if reply.outcome not in ("handoff_recorded", "unknown_patient"):
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response="utter_bereavement")
        return clear_pending_questions()
