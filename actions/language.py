"""Which language the patient wrote in ("en" or "es"), for the `language` slot.

`action_detect_language` is the slot's custom mapping: Rasa runs it while extracting slots, right
after the patient's message and before any other action, so the very first reply of a conversation
is already in the patient's language. Actions also pass the language to the backend, which owns the
patient's preferred language and records the change.

Lingua (lingua-language-detector) decides messages of two words or more, restricted to English and
Spanish. It cannot tell one short word ("no", "ok", "hello") reliably, so a single word decides only
when it is unmistakable ("gracias", "thanks"); otherwise nothing is set and the slot keeps what it
was (the backend's value, or the last clear message's).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

# Lingua's confidence in the winner; below it, the message tells us nothing.
MIN_CONFIDENCE = 0.7

SPANISH_WORDS = frozenset(
    """si gracias hola claro vale dale porfa perfecto listo bueno buenas buenos sale
    okey ándale andale obvio exacto correcto nel nop simon""".split()
)
ENGLISH_WORDS = frozenset(
    """yes yeah yep yup thanks thank thx ty hello hi hey sure okay great perfect awesome
    absolutely definitely nope nah cool""".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _plain(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).build()


def detect_language(text: str | None) -> str | None:
    """ "es", "en", or None when the message does not say."""
    if not text:
        return None
    words = _WORD.findall(text)
    if not words:
        return None
    if len(words) == 1:
        word = _plain(words[0])
        accented = words[0].casefold() != word
        if word in SPANISH_WORDS or "¿" in text or "¡" in text or accented:
            # one word written with a Spanish accent or mark ("sí", "¡listo!") is Spanish
            return "es" if word not in ENGLISH_WORDS else None
        return "en" if word in ENGLISH_WORDS else None
    from lingua import Language

    best = max(_detector().compute_language_confidence_values(text), key=lambda c: c.value)
    if best.value < MIN_CONFIDENCE:
        return None
    return "es" if best.language == Language.SPANISH else "en"


class ActionDetectLanguage(Action):
    """The `language` slot's custom mapping: set it when the patient's words make it clear."""

    def name(self) -> str:
        return "action_detect_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        if text.startswith("/"):
            return []  # a turn our own code started, not the patient's words
        language = detect_language(text)
        if language is None or language == tracker.get_slot("language"):
            return []
        return [SlotSet("language", language)]
