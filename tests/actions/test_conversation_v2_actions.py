"""Actions of conversation v2: a yes to our own question claims, conditions are asked about, a
bereavement gets condolences, Twilio's own STOP is recorded silently, the patient's language
reaches the backend."""

from __future__ import annotations

import pytest
from action_test_support import (
    OFFER,
    PHONE,
    FakeBackend,
    answer,
    down,
    make_tracker,
    responses,
    run_action,
    sent,
    slots_set,
)

from actions.common import TurnNotApplied
from actions.consent import ActionRecordCarrierOptIn, ActionRecordCarrierOptOut
from actions.handoff import ActionBereavement
from actions.offer_replies import (
    ActionAccept,
    ActionConditionalAccept,
    ActionCounterProposal,
    ActionOfferDetails,
)


def test_a_yes_after_just_to_confirm_claims_even_when_the_words_were_unsure() -> None:
    backend = FakeBackend(answer("claimed", OFFER))
    tracker = make_tracker("ok", confidence=0.62, slots={"awaiting_confirmation": True})
    messages, events = run_action(ActionAccept(backend), tracker)
    assert backend.calls == [("accept", {"phone": PHONE, "message_id": "SM0001"})]
    assert responses(messages) == ["utter_claimed"]
    assert slots_set(events)["awaiting_confirmation"] is False


def test_an_unsure_yes_out_of_the_blue_is_asked_about_first() -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    messages, events = run_action(ActionAccept(backend), make_tracker("ok", confidence=0.62))
    assert backend.calls == [("offers/current", {"phone": PHONE})]
    assert responses(messages) == ["utter_confirm_accept"]
    assert slots_set(events)["awaiting_confirmation"] is True


@pytest.mark.parametrize("action_class", [ActionOfferDetails, ActionConditionalAccept])
def test_questions_and_conditions_keep_the_offer_and_make_the_next_yes_count(
    action_class: type,
) -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    messages, events = run_action(action_class(backend), make_tracker("where?", "offer_details"))
    assert backend.calls == [("offers/current", {"phone": PHONE})]
    assert len(messages) == 1 and messages[0]["slot_date"] == "Tue Dec 1"
    assert slots_set(events)["awaiting_confirmation"] is True


def test_a_condition_is_answered_with_the_offer_as_it_is() -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    tracker = make_tracker("yes if it's with my usual doctor", "conditional_accept", 1.0)
    messages, _ = run_action(ActionConditionalAccept(backend), tracker)
    assert responses(messages) == ["utter_conditional_accept"]


def test_a_counter_proposal_names_the_offer_that_still_stands() -> None:
    backend = FakeBackend(answer("handoff_recorded", OFFER))
    tracker = make_tracker("could I come at 4 instead?", "counter_proposal")
    messages, events = run_action(ActionCounterProposal(backend), tracker)
    assert responses(messages) == ["utter_counter_proposal"]
    assert messages[0]["slot_time"] == "3:30 PM"
    assert slots_set(events)["awaiting_confirmation"] is True


def test_a_bereavement_gets_condolences_and_silences_the_number() -> None:
    backend = FakeBackend(answer("handoff_recorded"))
    tracker = make_tracker("this was my mother's phone, she died in March", "bereavement", 1.0)
    messages, _ = run_action(ActionBereavement(backend), tracker)
    assert backend.calls == [
        (
            "handoff",
            sent(
                "this was my mother's phone, she died in March",
                reason="bereavement",
                text="this was my mother's phone, she died in March",
            ),
        )
    ]
    assert responses(messages) == ["utter_bereavement"]


def test_twilios_own_stop_is_recorded_without_a_second_answer() -> None:
    backend = FakeBackend(answer("opted_out"))
    tracker = make_tracker("/EXTERNAL_twilio_opt_out", "EXTERNAL_twilio_opt_out", 1.0)
    messages, _ = run_action(ActionRecordCarrierOptOut(backend), tracker)
    assert backend.calls == [("opt_out", {"phone": PHONE, "message_id": "SM0001"})]
    assert messages == []


def test_twilios_own_start_is_recorded_without_a_second_answer() -> None:
    backend = FakeBackend(answer("opted_in"))
    tracker = make_tracker("/EXTERNAL_twilio_opt_in", "EXTERNAL_twilio_opt_in", 1.0)
    messages, _ = run_action(ActionRecordCarrierOptIn(backend), tracker)
    assert messages == []


def test_a_silent_opt_out_that_could_not_be_recorded_fails_the_turn_for_a_retry() -> None:
    backend = FakeBackend(down())
    tracker = make_tracker("/EXTERNAL_twilio_opt_out", "EXTERNAL_twilio_opt_out", 1.0)
    with pytest.raises(TurnNotApplied):
        run_action(ActionRecordCarrierOptOut(backend), tracker)


def test_the_language_the_patient_wrote_in_reaches_the_backend() -> None:
    backend = FakeBackend(
        answer(
            "claimed", OFFER, patient={"language": "es", "opted_out": False, "on_waitlist": False}
        )
    )
    messages, events = run_action(ActionAccept(backend), make_tracker("¡Sí!"))
    assert backend.calls == [("accept", {"phone": PHONE, "message_id": "SM0001", "language": "es"})]
    assert slots_set(events)["language"] == "es"


def test_the_fake_backend_refuses_an_answer_the_real_one_never_gives() -> None:
    backend = FakeBackend(answer("booked_twice", OFFER))
    with pytest.raises(AssertionError, match="never answers"):
        import asyncio

        asyncio.run(backend.reply("accept", PHONE, "SM1"))
