"""Availability, leave, opt out/in and hand-off actions."""

from __future__ import annotations

import pytest
from action_test_support import (
    FIXED_NOW,
    FakeBackend,
    answer,
    down,
    make_tracker,
    responses,
    run_action,
    sent,
    slots_set,
)

from actions.consent import ActionOptIn, ActionOptOut
from actions.handoff import ActionLogEmergency, ActionTalkToPerson, ActionWrongNumber
from actions.waitlist_preferences import ActionLeaveWaitlist, ActionUpdateAvailability


def clock():
    return FIXED_NOW


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("only mornings", {"time_of_day": "morning"}),
        ("not Fridays", {"days_of_week": ["mon", "tue", "wed", "thu", "sat", "sun"]}),
        ("I can only do tuesdays and thursdays", {"days_of_week": ["tue", "thu"]}),
        ("afternoons work better", {"time_of_day": "afternoon"}),
        ("solo por las mañanas", {"time_of_day": "morning"}),
    ],
)
def test_availability_sends_what_was_understood(text, fields) -> None:
    backend = FakeBackend(answer("availability_updated"))
    messages, _ = run_action(
        ActionUpdateAvailability(backend, clock=clock),
        make_tracker(text, intent="update_availability"),
    )
    assert backend.calls == [("availability", sent(text, **fields))]
    assert responses(messages) == ["utter_availability_updated"]


def test_availability_with_nothing_concrete_asks_instead_of_guessing() -> None:
    backend = FakeBackend()
    messages, _ = run_action(
        ActionUpdateAvailability(backend, clock=clock),
        make_tracker("my schedule changed", intent="update_availability"),
    )
    assert backend.calls == []
    assert responses(messages) == ["utter_ask_availability"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("not_on_waitlist", "utter_not_on_waitlist"), ("unknown_patient", "utter_unknown_patient")],
)
def test_availability_other_outcomes(outcome, expected) -> None:
    messages, _ = run_action(
        ActionUpdateAvailability(FakeBackend(answer(outcome)), clock=clock),
        make_tracker("only mornings", intent="update_availability"),
    )
    assert responses(messages) == [expected]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("left_waitlist", "utter_left_waitlist"),
        ("not_on_waitlist", "utter_not_on_waitlist"),
        ("unknown_patient", "utter_unknown_patient"),
    ],
)
def test_leave_waitlist(outcome, expected) -> None:
    backend = FakeBackend(answer(outcome))
    messages, _ = run_action(
        ActionLeaveWaitlist(backend), make_tracker("take me off the list", intent="leave_waitlist")
    )
    assert backend.calls[0][0] == "leave"
    assert responses(messages) == [expected]


@pytest.mark.parametrize("outcome", ["opted_out", "unknown_patient"])
def test_opt_out_always_confirms(outcome) -> None:
    backend = FakeBackend(
        answer(outcome, patient={"language": "es", "opted_out": True, "on_waitlist": True})
    )
    messages, events = run_action(ActionOptOut(backend), make_tracker("STOP", intent="opt_out"))
    assert backend.calls[0][0] == "opt_out"
    assert responses(messages) == ["utter_opted_out"]
    assert slots_set(events)["language"] == "es"


def test_opt_out_backend_down_is_not_silent() -> None:
    messages, _ = run_action(
        ActionOptOut(FakeBackend(down())), make_tracker("stop", intent="opt_out")
    )
    assert responses(messages) == ["utter_backend_down"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("opted_in", "utter_opted_in"),
        ("unknown_patient", "utter_unknown_patient"),
        # START from a number reported as the wrong person's: no "subscribed again"
        ("wrong_number", "utter_unknown_patient"),
    ],
)
def test_opt_in(outcome, expected) -> None:
    backend = FakeBackend(answer(outcome))
    messages, _ = run_action(ActionOptIn(backend), make_tracker("START", intent="opt_in"))
    assert backend.calls[0][0] == "opt_in"
    assert responses(messages) == [expected]


def test_talk_to_person_records_a_handoff() -> None:
    backend = FakeBackend(answer("handoff_recorded"))
    messages, _ = run_action(
        ActionTalkToPerson(backend), make_tracker("call me please", intent="talk_to_person")
    )
    assert backend.calls[0] == (
        "handoff",
        sent("call me please", reason="talk_to_person", text="call me please"),
    )
    assert responses(messages) == ["utter_handoff"]


def test_wrong_number() -> None:
    backend = FakeBackend(answer("handoff_recorded"))
    messages, _ = run_action(
        ActionWrongNumber(backend), make_tracker("wrong number", intent="wrong_number")
    )
    assert backend.calls[0][1]["reason"] == "wrong_number"
    assert responses(messages) == ["utter_wrong_number"]


def test_emergency_is_logged_quietly() -> None:
    # utter_emergency (911) comes from the rule before this action.
    backend = FakeBackend(answer("handoff_recorded"))
    messages, events = run_action(
        ActionLogEmergency(backend), make_tracker("chest pain", intent="emergency")
    )
    assert backend.calls[0][1]["reason"] == "emergency"
    assert messages == []
    assert events == []


def test_emergency_with_backend_down_adds_no_confusing_text(caplog) -> None:
    messages, _ = run_action(
        ActionLogEmergency(FakeBackend(down())), make_tracker("chest pain", intent="emergency")
    )
    assert messages == []
    assert "action_log_emergency" in caplog.text
