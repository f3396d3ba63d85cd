"""Deterministic safety net for emergencies ("chest pain", "no puedo respirar").

A classifier can miss a phrasing it has not seen; an emergency must not be
missed, nor read as "yes" to an offer. When the message contains one of these
phrases, the intent becomes `emergency` (confidence 1.0), whatever the
classifiers said, and the rule answers with the 911 message. A false alarm
only costs a gentle "If this is an emergency, call 911" text.
"""

from __future__ import annotations

import re
import unicodedata

# Matched against lower-case text without accents ("está" -> "esta").
DEFAULT_PATTERNS: list[str] = [
    # English
    r"\bchest pains?\b",
    r"\bpains? in (?:my|his|her|the) chest\b",
    r"\bchest (?:hurts|is tight)\b",
    r"\b(?:can'?t|cannot|can not|unable to) breath",
    r"\b(?:not|isn'?t|stopped) breathing\b",
    r"\btrouble breathing\b",
    r"\bshort of breath\b",
    r"\bstruggling to breathe\b",
    r"\bheart attack\b",
    r"\bstroke\b",
    r"\bface (?:is )?drooping\b",
    r"\bslurred speech\b",
    r"\bunconscious\b",
    r"\bpassed out\b",
    r"\bfainted\b",
    r"\bcollapsed\b",
    r"\bwon'?t wake up\b",
    r"\boverdos",
    r"\btoo many pills\b",
    r"\btoo much (?:medication|medicine)\b",
    r"\b(?:whole|entire) bottle of pills\b",
    r"\bsuicid",
    r"\bkill(?:ing)? myself\b",
    r"\bend my life\b",
    r"\bwant to die\b",
    r"\bhurt myself\b",
    r"\bseizure\b",
    r"\bbleeding (?:a lot|heavily|badly|won'?t stop)\b",
    r"\bsevere bleeding\b",
    r"\bthroat is (?:closing|swelling)\b",
    r"\bambulance\b",
    r"\b911\b",
    r"\bemergency\b",
    # Spanish
    r"\bdolor (?:\w+ )?(?:de|en el) pecho\b",
    r"\bme duele (?:mucho )?el pecho\b",
    r"\bno puedo respirar\b",
    r"\bme ahogo\b",
    r"\bme falta (?:el aire|la respiracion)\b",
    r"\binfarto\b",
    r"\bderrame cerebral\b",
    r"\bdesmay",
    r"\binconsciente\b",
    r"\bsangrando mucho\b",
    r"\bsobredosis\b",
    r"\bquitarme la vida\b",
    r"\bme quiero morir\b",
    r"\bambulancia\b",
    r"\bemergencia\b",
]


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def is_emergency(text: str | None, patterns: list[re.Pattern] | None = None) -> bool:
    """True when the message mentions one of the emergency phrases."""
    if not text:
        return False
    plain = _plain(text)
    return any(p.search(plain) for p in (patterns or _COMPILED))


_COMPILED = [re.compile(p) for p in DEFAULT_PATTERNS]
