"""The emergency safety net: emergency phrases always become `emergency`."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from nlu_components.emergency_phrases import is_emergency
from nlu_components.safety_order import SafetyOrder


def classified(text: str, intent: str, confidence: float) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}], add_to_output=True)
    return message


@pytest.mark.parametrize(
    "text",
    [
        "chest pain",
        "I'm having CHEST PAINS",
        "I can't breathe",
        "i cant breath",
        "I can\u2019t breathe",
        "my dad collapsed and isn't breathing",
        "yes but I think I'm having a heart attack",
        "I took too many pills",
        "I want to kill myself",
        "call 911",
        "dolor de pecho",
        "tengo un dolor fuerte en el pecho",
        "no puedo respirar",
        "creo que me está dando un infarto",
        "se desmayó",
        "es una emergencia",
    ],
)
def test_emergency_phrases(text: str) -> None:
    assert is_emergency(text)


@pytest.mark.parametrize(
    "text",
    ["yes", "no thanks", "try me next week", "can I come at 3?", "STOP", "", None, "help"],
)
def test_ordinary_messages(text) -> None:
    assert not is_emergency(text)


def test_overrides_a_confident_yes() -> None:
    [message] = SafetyOrder().process([classified("yes!! chest pain though", "accept", 0.99)])
    assert message.get("intent") == {"name": "emergency", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "emergency"


def test_leaves_other_messages_alone() -> None:
    [message] = SafetyOrder().process([classified("yes please", "accept", 0.97)])
    assert message.get("intent") == {"name": "accept", "confidence": 0.97}
