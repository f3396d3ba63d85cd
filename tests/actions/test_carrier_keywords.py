"""Single-word carrier keywords are decided in code (by the safety order), whatever NLU said."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from nlu_components.carrier_keywords import DEFAULT_KEYWORDS, keyword_intent, normalise_keyword
from nlu_components.safety_order import SafetyOrder


def classified(text: str, intent: str = "nlu_fallback", confidence: float = 0.4) -> Message:
    """A message as the classifiers (and the fallback) left it."""
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set(
        "intent_ranking",
        [{"name": intent, "confidence": confidence}, {"name": "opt_out", "confidence": 0.3}],
        add_to_output=True,
    )
    return message


@pytest.fixture
def component() -> SafetyOrder:
    return SafetyOrder()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "opt_out"),
        ("stop", "opt_out"),
        ("Stop.", "opt_out"),
        (" stop ", "opt_out"),
        ("STOP!!!", "opt_out"),
        ("Cancel", "opt_out"),
        ("STOPALL", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("End", "opt_out"),
        ("quit", "opt_out"),
        ("REVOKE", "opt_out"),
        ("OptOut", "opt_out"),
        ("START", "opt_in"),
        ("start.", "opt_in"),
        ("Unstop", "opt_in"),
        ("HELP", "help"),
        ("help?", "help"),
        ("Info", "help"),
        ("STOP please", None),
        ("please stop", None),
        ("stop texting me", None),
        ("opt out", None),
        ("opt-out", None),
        ("cancel my appointment", None),
        ("yes", None),
        ("stopping", None),
        ("", None),
        ("!!!", None),
    ],
)
def test_keyword_intent(text: str, expected: str | None) -> None:
    assert keyword_intent(text, DEFAULT_KEYWORDS) == expected


def test_keyword_overrides_any_prediction_with_full_confidence(component) -> None:
    [message] = component.process([classified("Stop.", intent="decline", confidence=0.9)])
    assert message.get("intent") == {"name": "opt_out", "confidence": 1.0}
    ranking = message.get("intent_ranking")
    assert ranking[0] == {"name": "opt_out", "confidence": 1.0}
    assert [entry["name"] for entry in ranking].count("opt_out") == 1


def test_keyword_overrides_the_fallback(component) -> None:
    [message] = component.process([classified(" HELP ")])
    assert message.get("intent")["name"] == "help"


def test_longer_messages_are_left_to_nlu(component) -> None:
    text = "can I stop by the pharmacy first?"
    [message] = component.process([classified(text, intent="offer_details", confidence=0.93)])
    assert message.get("intent") == {"name": "offer_details", "confidence": 0.93}


def test_spanish_keywords_too(component) -> None:
    [message] = component.process([classified("ALTO")])
    assert message.get("intent")["name"] == "opt_out"


def test_normalise_keyword() -> None:
    assert normalise_keyword("  *STOP*!! ") == "stop"
    assert normalise_keyword(None) == ""
