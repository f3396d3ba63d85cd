"""Accept, decline, defer, details and counter-proposal actions."""

from __future__ import annotations

import logging

import pytest
from action_test_support import (
    FIXED_NOW,
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

from actions import offer_replies
from actions.offer_replies import (
    ActionAccept,
    ActionCounterProposal,
    ActionDecline,
    ActionDefer,
    ActionOfferDetails,
)


def clock():
    return FIXED_NOW


# --- accept -----------------------------------------------------------------


def test_clear_yes_claims_and_confirms_with_date_time_location() -> None:
    backend = FakeBackend(
        answer(
            "claimed", OFFER, patient={"language": "es", "opted_out": False, "on_waitlist": False}
        )
    )
    messages, events = run_action(ActionAccept(backend), make_tracker("yes", confidence=0.98))

    assert backend.calls == [("accept", sent("yes"))]
    assert responses(messages) == ["utter_claimed"]
    assert messages[0]["slot_date"] == "Tue Dec 1"
    assert messages[0]["slot_time"] == "3:30 PM"
    assert messages[0]["location"] == "Main Street Clinic"
    slots = slots_set(events)
    assert slots["language"] == "es"
    assert slots["offer_id"] == "12"
    assert slots["awaiting_confirmation"] is False
    assert slots["awaiting_defer_date"] is False


@pytest.mark.parametrize(
    ("outcome", "patient", "expected"),
    [
        (
            "late_claimed",
            {"language": "en", "opted_out": False, "on_waitlist": False},
            "utter_late_claimed",
        ),
        ("too_late", {"language": "en", "opted_out": False, "on_waitlist": True}, "utter_too_late"),
        (
            "no_open_offer",
            {"language": "en", "opted_out": False, "on_waitlist": True},
            "utter_no_open_offer",
        ),
        (
            "no_open_offer",
            {"language": "en", "opted_out": False, "on_waitlist": False},
            "utter_no_open_offer_not_listed",
        ),
        (
            "opted_out",
            {"language": "en", "opted_out": True, "on_waitlist": True},
            "utter_accept_opted_out",
        ),
        ("unknown_patient", None, "utter_unknown_patient"),
    ],
)
def test_accept_outcomes_choose_their_response(outcome, patient, expected) -> None:
    offer = OFFER if outcome in ("late_claimed", "too_late") else None
    backend = FakeBackend(answer(outcome, offer, patient=patient))
    messages, _ = run_action(ActionAccept(backend), make_tracker("YES!!", confidence=0.99))
    assert responses(messages) == [expected]


def test_weak_yes_asks_to_confirm_and_never_claims() -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    messages, events = run_action(
        ActionAccept(backend), make_tracker("ok i guess", confidence=0.62)
    )

    assert [kind for kind, _ in backend.calls] == ["offers/current"]
    assert responses(messages) == ["utter_confirm_accept"]
    assert messages[0]["slot_time"] == "3:30 PM"
    assert messages[0]["slot_date"] == "Tue Dec 1"
    assert slots_set(events)["awaiting_confirmation"] is True


def test_accept_reached_without_an_accept_intent_only_asks() -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    messages, _ = run_action(
        ActionAccept(backend), make_tracker("hmm", intent="nlu_fallback", confidence=0.99)
    )
    assert [kind for kind, _ in backend.calls] == ["offers/current"]
    assert responses(messages) == ["utter_confirm_accept"]


def test_weak_yes_without_open_offer_says_so() -> None:
    backend = FakeBackend(answer("no_open_offer"))
    messages, events = run_action(ActionAccept(backend), make_tracker("ok", confidence=0.55))
    assert responses(messages) == ["utter_no_open_offer"]
    assert slots_set(events)["awaiting_confirmation"] is False
    assert [kind for kind, _ in backend.calls] == ["offers/current"]


def test_clear_yes_after_confirmation_question_claims() -> None:
    backend = FakeBackend(answer("claimed", OFFER))
    tracker = make_tracker("YES", confidence=0.99, slots={"awaiting_confirmation": True})
    messages, events = run_action(ActionAccept(backend), tracker)
    assert [kind for kind, _ in backend.calls] == ["accept"]
    assert responses(messages) == ["utter_claimed"]
    assert slots_set(events)["awaiting_confirmation"] is False


def test_threshold_is_tunable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offer_replies, "ACCEPT_CONFIRM_THRESHOLD", 0.5)
    backend = FakeBackend(answer("claimed", OFFER))
    run_action(ActionAccept(backend), make_tracker("ok", confidence=0.6))
    assert [kind for kind, _ in backend.calls] == ["accept"]


def test_backend_down_gives_trouble_message_and_logs_masked_phone(caplog) -> None:
    caplog.set_level(logging.ERROR)
    backend = FakeBackend(down())
    messages, events = run_action(ActionAccept(backend), make_tracker("yes please"))
    assert responses(messages) == ["utter_backend_down"]
    assert events == []
    assert "action_accept" in caplog.text
    assert PHONE not in caplog.text
    assert "***4567" in caplog.text
    assert "yes please" not in caplog.text  # no message bodies in logs


def test_unexpected_outcome_is_not_silent(caplog) -> None:
    backend = FakeBackend(answer("something_new"))
    messages, _ = run_action(ActionAccept(backend), make_tracker())
    assert responses(messages) == ["utter_backend_down"]
    assert "something_new" in caplog.text


def test_any_crash_still_answers() -> None:
    backend = FakeBackend(RuntimeError("boom"))
    messages, _ = run_action(ActionAccept(backend), make_tracker())
    assert responses(messages) == ["utter_backend_down"]


def test_missing_message_id_gets_a_stable_substitute() -> None:
    first, second = FakeBackend(answer("claimed", OFFER)), FakeBackend(answer("claimed", OFFER))
    run_action(ActionAccept(first), make_tracker(message_id=None))
    run_action(ActionAccept(second), make_tracker(message_id=None))
    first_id = first.calls[0][1]["message_id"]
    assert first_id.startswith("rasa-")
    assert first_id == second.calls[0][1]["message_id"]


# --- decline ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("declined", "utter_declined"),
        ("no_open_offer", "utter_no_open_offer"),
        ("unknown_patient", "utter_unknown_patient"),
    ],
)
def test_decline_outcomes(outcome, expected) -> None:
    backend = FakeBackend(answer(outcome, OFFER if outcome == "declined" else None))
    messages, events = run_action(
        ActionDecline(backend), make_tracker("no thanks", intent="decline")
    )
    assert backend.calls[0][0] == "decline"
    assert responses(messages) == [expected]
    assert slots_set(events)["awaiting_confirmation"] is False


def test_decline_backend_down() -> None:
    messages, _ = run_action(
        ActionDecline(FakeBackend(down())), make_tracker("n", intent="decline")
    )
    assert responses(messages) == ["utter_backend_down"]


# --- defer ------------------------------------------------------------------


def defer_tracker(text: str, expression: str | None = None, **slots) -> object:
    entities = [{"entity": "time_expression", "value": expression}] if expression else []
    return make_tracker(text, intent="defer", entities=entities, slots=slots)


def test_defer_next_week_sends_monday_and_states_the_date() -> None:
    backend = FakeBackend(answer("deferred", None, not_before="2026-11-30"))
    action = ActionDefer(backend, clock=clock)
    messages, events = run_action(
        action, defer_tracker("can't make it, try me next week", "next week")
    )
    assert backend.calls == [
        ("defer", sent("can't make it, try me next week", not_before="2026-11-30"))
    ]
    assert responses(messages) == ["utter_deferred"]
    assert messages[0]["not_before_text"] == "Mon Nov 30"
    assert slots_set(events)["awaiting_defer_date"] is False


def test_defer_date_is_written_in_the_conversation_language() -> None:
    backend = FakeBackend(answer("deferred", None, not_before="2026-12-16"))
    messages, _ = run_action(
        ActionDefer(backend, clock=clock),
        defer_tracker("mejor después del 15", "después del 15", language="es"),
    )
    assert backend.calls[0][1]["not_before"] == "2026-12-16"
    assert messages[0]["not_before_text"] == "mie 16 dic"


def test_defer_reads_the_whole_text_when_no_entity_was_found() -> None:
    backend = FakeBackend(answer("deferred", None, not_before="2026-12-09"))
    run_action(ActionDefer(backend, clock=clock), defer_tracker("try me in two weeks"))
    assert backend.calls[0][1]["not_before"] == "2026-12-09"


def test_defer_without_date_asks_when_and_remembers() -> None:
    backend = FakeBackend()
    messages, events = run_action(
        ActionDefer(backend, clock=clock), defer_tracker("not now, maybe later")
    )
    assert backend.calls == []
    assert responses(messages) == ["utter_ask_defer_date"]
    assert slots_set(events) == {"awaiting_defer_date": True}


def test_answer_to_when_completes_the_defer() -> None:
    backend = FakeBackend(answer("deferred", None, not_before="2026-12-01"))
    tracker = make_tracker(
        "next month", intent="nlu_fallback", confidence=0.5, slots={"awaiting_defer_date": True}
    )
    messages, events = run_action(ActionDefer(backend, clock=clock), tracker)
    assert backend.calls[0][1]["not_before"] == "2026-12-01"
    assert responses(messages) == ["utter_deferred"]
    assert slots_set(events)["awaiting_defer_date"] is False


def test_second_unclear_answer_clarifies_instead_of_looping() -> None:
    backend = FakeBackend()
    tracker = make_tracker(
        "hmm dunno", intent="nlu_fallback", confidence=0.4, slots={"awaiting_defer_date": True}
    )
    messages, events = run_action(ActionDefer(backend, clock=clock), tracker)
    assert backend.calls == []
    assert responses(messages) == ["utter_clarify"]
    assert slots_set(events) == {"awaiting_defer_date": False}


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("not_on_waitlist", "utter_not_on_waitlist"), ("unknown_patient", "utter_unknown_patient")],
)
def test_defer_other_outcomes(outcome, expected) -> None:
    backend = FakeBackend(answer(outcome))
    messages, _ = run_action(
        ActionDefer(backend, clock=clock), defer_tracker("next week", "next week")
    )
    assert responses(messages) == [expected]


def test_defer_backend_down() -> None:
    messages, _ = run_action(
        ActionDefer(FakeBackend(down()), clock=clock), defer_tracker("next week", "next week")
    )
    assert responses(messages) == ["utter_backend_down"]


# --- details and counter-proposal --------------------------------------------


def test_details_answer_from_the_current_offer() -> None:
    backend = FakeBackend(answer("open_offer", OFFER))
    messages, events = run_action(
        ActionOfferDetails(backend), make_tracker("what time?", intent="offer_details")
    )
    assert backend.calls == [("offers/current", {"phone": PHONE})]
    assert responses(messages) == ["utter_offer_details"]
    assert messages[0]["minutes_left"] == "5"
    assert messages[0]["location"] == "Main Street Clinic"
    assert slots_set(events)["slot_time"] == "3:30 PM"


def test_details_after_the_hold_ended() -> None:
    backend = FakeBackend(answer("open_offer", {**OFFER, "minutes_left": 0}))
    messages, _ = run_action(
        ActionOfferDetails(backend), make_tracker("how long do I have?", intent="offer_details")
    )
    assert responses(messages) == ["utter_offer_details_hold_over"]


def test_details_without_offer() -> None:
    backend = FakeBackend(answer("no_open_offer"))
    messages, _ = run_action(
        ActionOfferDetails(backend), make_tracker("where is it?", intent="offer_details")
    )
    assert responses(messages) == ["utter_no_open_offer"]


def test_counter_proposal_restates_the_fixed_time() -> None:
    backend = FakeBackend(answer("handoff_recorded", OFFER))
    messages, _ = run_action(
        ActionCounterProposal(backend), make_tracker("can I come at 3?", intent="counter_proposal")
    )
    assert backend.calls[0] == (
        "handoff",
        sent("can I come at 3?", reason="counter_proposal", text="can I come at 3?"),
    )
    assert responses(messages) == ["utter_counter_proposal"]
    assert messages[0]["slot_time"] == "3:30 PM"


def test_counter_proposal_without_open_offer() -> None:
    backend = FakeBackend(answer("handoff_recorded", {**OFFER, "state": "accepted"}))
    messages, _ = run_action(
        ActionCounterProposal(backend), make_tracker("can I come at 3?", intent="counter_proposal")
    )
    assert responses(messages) == ["utter_counter_proposal_no_offer"]
