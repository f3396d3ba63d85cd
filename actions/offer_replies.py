"""Replies to an offer: accept, decline, defer, details, counter-proposal."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend_client import BackendReply
from actions.common import (
    UTTER_NOT_ON_WAITLIST,
    UTTER_UNKNOWN_PATIENT,
    BackendAction,
    clear_pending_questions,
    entity_values,
    env_float,
    latest_intent,
    latest_text,
    offer_template_values,
    on_waitlist,
    phone_of,
    reply_events,
)
from actions.dates import format_date, resolve_not_before

logger = logging.getLogger(__name__)

# Below this accept confidence (but above the NLU fallback threshold) we ask
# before claiming: a slot must never be claimed on a guess.
ACCEPT_CONFIRM_THRESHOLD = env_float("ACCEPT_CONFIRM_THRESHOLD", 0.80)


def no_open_offer_response(reply: BackendReply) -> str:
    """ "still on the list" only when it is true."""
    return "utter_no_open_offer" if on_waitlist(reply) else "utter_no_open_offer_not_listed"


class ActionAccept(BackendAction):
    """A yes: claim the slot, or confirm first when NLU was unsure."""

    def name(self) -> str:
        return "action_accept"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = latest_intent(tracker)
        confidence = float(intent.get("confidence") or 0.0)
        # A yes to our own question ("Just to confirm ...", the details of the offer) is the
        # patient's answer to the offer: it claims even when the words alone were less sure.
        answered_our_question = bool(tracker.get_slot("awaiting_confirmation"))
        sure = confidence >= ACCEPT_CONFIRM_THRESHOLD or answered_our_question
        if intent.get("name") != "accept" or not sure:
            # Only a clear "accept" claims; anything else gets a yes/no question.
            return await self._confirm_first(dispatcher, tracker)

        reply = await self.reply(tracker, "accept")
        values = offer_template_values(reply.offer)
        responses = {
            "claimed": "utter_claimed",
            "late_claimed": "utter_late_claimed",
            "too_late": "utter_too_late",
            "opted_out": "utter_accept_opted_out",
            "unknown_patient": UTTER_UNKNOWN_PATIENT,
        }
        if reply.outcome == "no_open_offer":
            response = no_open_offer_response(reply)
        elif reply.outcome in responses:
            response = responses[reply.outcome]
        else:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=response, **values)
        return reply_events(reply) + clear_pending_questions()

    async def _confirm_first(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        """Read the current offer (no claim) and ask a yes/no question about it."""
        reply = await self.client.current_offer(phone_of(tracker))
        if reply.outcome == "open_offer" and reply.offer:
            dispatcher.utter_message(
                response="utter_confirm_accept", **offer_template_values(reply.offer)
            )
            return reply_events(reply) + [SlotSet("awaiting_confirmation", True)]
        if reply.outcome == "no_open_offer":
            dispatcher.utter_message(response=no_open_offer_response(reply))
            return reply_events(reply) + [SlotSet("awaiting_confirmation", False)]
        if reply.outcome == "unknown_patient":
            dispatcher.utter_message(response=UTTER_UNKNOWN_PATIENT)
            return []
        return self.unexpected(dispatcher, tracker, reply)


class ActionDecline(BackendAction):
    """A no: pass on the open offer, stay on the list."""

    def name(self) -> str:
        return "action_decline"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.reply(tracker, "decline")
        if reply.outcome == "declined":
            response = "utter_declined"
        elif reply.outcome == "no_open_offer":
            response = no_open_offer_response(reply)
        elif reply.outcome == "unknown_patient":
            response = UTTER_UNKNOWN_PATIENT
        else:
            return self.unexpected(dispatcher, tracker, reply)
        dispatcher.utter_message(response=response, **offer_template_values(reply.offer))
        return reply_events(reply) + clear_pending_questions()


def defer_date_from(tracker: Tracker, now: datetime | None = None) -> date | None:
    """The annotated time expression first, then the whole message."""
    for expression in entity_values(tracker, "time_expression"):
        resolved = resolve_not_before(expression, now=now)
        if resolved:
            return resolved
    return resolve_not_before(latest_text(tracker), now=now)


class ActionDefer(BackendAction):
    """ "Try me next week": decline for now and set the not-before date."""

    def name(self) -> str:
        return "action_defer"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        not_before = defer_date_from(tracker, self.now())
        if not_before is None:
            if tracker.get_slot("awaiting_defer_date"):
                # Asked once already: do not loop on the same question.
                dispatcher.utter_message(response="utter_clarify")
                return [SlotSet("awaiting_defer_date", False)]
            dispatcher.utter_message(response="utter_ask_defer_date")
            return [SlotSet("awaiting_defer_date", True)]

        reply = await self.reply(
            tracker,
            "defer",
            not_before=not_before.isoformat(),
        )
        if reply.outcome == "deferred":
            confirmed = _parse_iso(reply.not_before) or not_before
            # Responses render in the tracker's current language, so the date does too.
            text = format_date(confirmed, tracker.get_slot("language"))
            dispatcher.utter_message(response="utter_deferred", not_before_text=text)
            return (
                reply_events(reply) + [SlotSet("not_before_text", text)] + clear_pending_questions()
            )
        if reply.outcome == "not_on_waitlist":
            dispatcher.utter_message(response=UTTER_NOT_ON_WAITLIST)
        elif reply.outcome == "unknown_patient":
            dispatcher.utter_message(response=UTTER_UNKNOWN_PATIENT)
        else:
            return self.unexpected(dispatcher, tracker, reply)
        return reply_events(reply) + clear_pending_questions()


def _parse_iso(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class ActionOfferDetails(BackendAction):
    """ "What time?", "Where is it?", "How long do I have?" """

    def name(self) -> str:
        return "action_offer_details"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.client.current_offer(phone_of(tracker))
        if reply.outcome == "open_offer" and reply.offer:
            values = offer_template_values(reply.offer)
            response = (
                "utter_offer_details"
                if _minutes_left(reply.offer) > 0
                else "utter_offer_details_hold_over"
            )
            dispatcher.utter_message(response=response, **values)
            # a question about the offer, then "ok yes": that yes answers the offer
            return reply_events(reply) + [SlotSet("awaiting_confirmation", True)]
        elif reply.outcome in ("no_open_offer", "open_offer"):
            dispatcher.utter_message(response=no_open_offer_response(reply))
        elif reply.outcome == "unknown_patient":
            dispatcher.utter_message(response=UTTER_UNKNOWN_PATIENT)
        else:
            return self.unexpected(dispatcher, tracker, reply)
        return reply_events(reply)


def _minutes_left(offer: dict[str, Any]) -> int:
    try:
        return int(offer.get("minutes_left") or 0)
    except (TypeError, ValueError):
        return 0


class ActionCounterProposal(BackendAction):
    """ "Can I come at 3?": the time is fixed; staff see the request, the offer stands."""

    def name(self) -> str:
        return "action_counter_proposal"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.handoff(tracker, "counter_proposal")
        if reply.outcome == "handoff_recorded":
            if reply.offer and reply.offer.get("state", "pending") == "pending":
                dispatcher.utter_message(
                    response="utter_counter_proposal", **offer_template_values(reply.offer)
                )
                # the offer still stands: "ok yes" next claims it
                return reply_events(reply) + [SlotSet("awaiting_confirmation", True)]
            dispatcher.utter_message(response="utter_counter_proposal_no_offer")
        elif reply.outcome == "unknown_patient":
            dispatcher.utter_message(response=UTTER_UNKNOWN_PATIENT)
        else:
            return self.unexpected(dispatcher, tracker, reply)
        return reply_events(reply)


class ActionConditionalAccept(BackendAction):
    """ "Yes if it's with my usual doctor": the offer cannot promise that; say what it is and ask,
    never claim. The offer stays pending, and a plain yes next claims it."""

    def name(self) -> str:
        return "action_conditional_accept"

    async def handle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = await self.client.current_offer(phone_of(tracker))
        if reply.outcome == "open_offer" and reply.offer:
            dispatcher.utter_message(
                response="utter_conditional_accept", **offer_template_values(reply.offer)
            )
            return reply_events(reply) + [SlotSet("awaiting_confirmation", True)]
        if reply.outcome in ("no_open_offer", "open_offer"):
            dispatcher.utter_message(response=no_open_offer_response(reply))
            return reply_events(reply)
        if reply.outcome == "unknown_patient":
            dispatcher.utter_message(response=UTTER_UNKNOWN_PATIENT)
            return []
        return self.unexpected(dispatcher, tracker, reply)
