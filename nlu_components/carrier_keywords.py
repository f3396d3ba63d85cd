"""Deterministic carrier keywords (STOP, START, HELP, ...).

Carriers and Twilio treat these single-word messages as commands, so the
assistant must never leave them to a statistical classifier. The safety order
(safety_order.py, last in the pipeline) uses these helpers to override the
intent with confidence 1.0 when the whole message is one keyword.
"""

from __future__ import annotations

import re
import unicodedata

from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
)
from rasa.shared.nlu.training_data.message import Message

DEFAULT_KEYWORDS: dict[str, list[str]] = {
    "opt_out": [
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
    ],
    "opt_in": ["start", "unstop"],
    "help": ["help", "info"],
}

# Everything that is not a letter or digit counts as punctuation/decoration,
# so "Stop.", " stop ", "STOP!!" and "*stop*" all reduce to "stop".
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_keyword(text: str | None) -> str:
    """Lower-case the text and drop surrounding spaces and punctuation."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    # Strip punctuation only at the edges: "opt-out" inside must stay two parts.
    return re.sub(r"^[\W_]+|[\W_]+$", "", folded)


def keyword_intent(text: str | None, keywords: dict[str, list[str]]) -> str | None:
    """Return the intent for a whole-message keyword, or None."""
    word = normalise_keyword(text)
    if not word or _NON_WORD.search(word):
        # Empty, or more than one word: not a carrier keyword.
        return None
    for intent, words in keywords.items():
        if word in words:
            return intent
    return None


def override_intent(message: Message, intent: str, confidence: float = 1.0) -> None:
    """Sets `intent` (with `confidence`, 1.0 unless told) and puts it first in the ranking."""
    prediction = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: confidence}
    message.set(INTENT, prediction, add_to_output=True)
    # Keep the classifier's ranking for debugging, minus the overridden entry.
    ranking = [
        entry
        for entry in message.get(INTENT_RANKING_KEY) or []
        if entry.get(INTENT_NAME_KEY) != intent
    ]
    message.set(INTENT_RANKING_KEY, [dict(prediction)] + ranking, add_to_output=True)
