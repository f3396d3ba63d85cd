"""The held-out NLU set keeps its shape: coverage, languages, no duplicates.

Run with the Rasa venv (`make test-nlu` does): it reads the set with Rasa's
own YAML reader and checks it against the intents in domain.yml.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from rasa.shared.nlu.training_data.message import Message

from nlu_components.carrier_keywords import DEFAULT_KEYWORDS, keyword_intent
from nlu_components.safety_order import plain

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
LANGUAGES = {"en", "es", "mixed"}

MIN_TOTAL = 340
MIN_SPANISH = 120
MIN_PER_INTENT = 12
# The intents where a mistake costs most (a slot claimed or lost, or a
# patient talked at about nothing) get the most examples.
MIN_FOR_MAIN_INTENTS = {"accept": 40, "decline": 40, "out_of_scope": 40}


def _language(message: Message) -> str | None:
    metadata = message.get("metadata") or {}
    return (metadata.get("intent") or {}).get("language")


@pytest.fixture(scope="module")
def examples() -> list[Message]:
    return RasaYAMLReader().read(str(HELDOUT)).intent_examples


@pytest.fixture(scope="module")
def patient_intents() -> set[str]:
    # EXTERNAL_* intents come from the backend or the channel, never from a patient's text.
    with (ROOT / "domain.yml").open(encoding="utf-8") as fh:
        intents = yaml.safe_load(fh)["intents"]
    names = {next(iter(i)) if isinstance(i, dict) else i for i in intents}
    return {name for name in names if not name.startswith("EXTERNAL_")}


def test_file_is_rasa_nlu_yaml() -> None:
    with HELDOUT.open(encoding="utf-8") as fh:
        content = yaml.safe_load(fh)
    assert content["version"] == "3.1"
    assert set(content) == {"version", "nlu"}


def test_every_patient_intent_is_covered(
    examples: list[Message], patient_intents: set[str]
) -> None:
    counts = Counter(m.get("intent") for m in examples)
    assert set(counts) == patient_intents
    for intent, count in counts.items():
        minimum = MIN_FOR_MAIN_INTENTS.get(intent, MIN_PER_INTENT)
        assert count >= minimum, f"{intent}: {count} < {minimum}"


def test_size_and_languages(examples: list[Message]) -> None:
    languages = Counter(_language(m) for m in examples)
    assert set(languages) <= LANGUAGES, f"untagged or unknown language: {languages}"
    assert len(examples) >= MIN_TOTAL
    assert languages["es"] >= MIN_SPANISH


def test_no_repeated_message(examples: list[Message]) -> None:
    # The gate matches predictions back by text, and a repeat only inflates a score.
    normalised = Counter(" ".join(m.get("text").casefold().split()) for m in examples)
    repeated = [text for text, n in normalised.items() if n > 1]
    assert not repeated


def test_no_bare_carrier_keyword(examples: list[Message]) -> None:
    # Code, not the classifier, answers STOP, START, HELP, ...: they would only flatter it.
    bare = [m.get("text") for m in examples if keyword_intent(m.get("text"), DEFAULT_KEYWORDS)]
    assert not bare


def _same_words(text: str) -> str:
    """Case, accents, punctuation and spacing aside: the words a classifier sees."""
    return " ".join(re.findall(r"\w+", plain(text)))


def test_no_message_is_in_the_training_data(examples: list[Message]) -> None:
    # A held-out message that is also a training example measures memory, not reading.
    training = set()
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        training.update(
            _same_words(m.get("text")) for m in RasaYAMLReader().read(str(path)).intent_examples
        )
    overlap = sorted(m.get("text") for m in examples if _same_words(m.get("text")) in training)
    assert not overlap, f"held-out messages found in data/nlu/: {overlap}"
