"""The intent classifier on its own: trained, stored, loaded back and asked, through Rasa's
component interface and a real model storage on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.linear_intent import (
    MODEL_FILE,
    LinearIntentClassifier,
    UntrustedModelError,
)

EXAMPLES = {
    "accept": [
        "yes",
        "yes please",
        "yes I want it",
        "sure",
        "ok book it",
        "si la quiero",
        "sí por favor",
        "claro que sí",
        "yeah I'll take it",
        "sounds good",
    ],
    "decline": [
        "no",
        "no thanks",
        "can't make it",
        "not this time",
        "no gracias",
        "no puedo",
        "I'll pass",
        "nope",
        "no, busy then",
        "not interested",
    ],
    "greet": [
        "hi",
        "hello",
        "hey there",
        "hola",
        "buenos días",
        "good morning",
        "hi there",
        "buenas tardes",
        "hey",
        "hello!",
    ],
}


def training_data() -> TrainingData:
    return TrainingData(
        [
            Message(data={"text": text, "intent": intent})
            for intent, texts in EXAMPLES.items()
            for text in texts
        ]
    )


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


def ask(component: LinearIntentClassifier, text: str) -> Message:
    message = Message(data={"text": text})
    component.process([message])
    return message


@pytest.fixture()
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def test_trained_stored_and_loaded_back_it_ranks_every_intent(storage: LocalModelStorage) -> None:
    resource = Resource("intents")
    config = {"ranking_length": 2, "calibration_folds": 3}
    trained = LinearIntentClassifier.create(config, storage, resource, context())
    trained.train(training_data())

    loaded = LinearIntentClassifier.load(config, storage, resource, context())
    for component in (trained, loaded):
        message = ask(component, "yes I'd like it please")
        intent = message.get("intent")
        ranking = message.get("intent_ranking")
        assert intent["name"] == "accept"
        assert [entry["name"] for entry in ranking][0] == "accept"
        assert len(ranking) == 2  # ranking_length
        assert ranking[0]["confidence"] > ranking[1]["confidence"]
        assert ask(component, "no gracias, no puedo").get("intent")["name"] == "decline"
    # the loaded copy gives the same probabilities as the trained one
    assert ask(loaded, "hola").get("intent") == ask(trained, "hola").get("intent")


@pytest.mark.parametrize("planted", [Path.home, exec, np.save])
def test_a_stored_model_naming_a_foreign_type_is_refused(
    storage: LocalModelStorage, planted: object
) -> None:
    resource = Resource("intents")
    with storage.write_to(resource) as directory:
        # skops stores a function by name; loading would import it, and a vectorizer's
        # preprocessor would then call it on every text
        sio.dump({"preprocess": planted}, directory / MODEL_FILE)
    with pytest.raises(UntrustedModelError):
        LinearIntentClassifier.load({}, storage, resource, context())


def test_without_a_stored_model_it_predicts_nothing(storage: LocalModelStorage) -> None:
    component = LinearIntentClassifier.load({}, storage, Resource("never-trained"), context())
    message = ask(component, "yes")
    assert message.get("intent") is None


def test_a_new_intent_with_few_examples_still_trains(storage: LocalModelStorage) -> None:
    data = training_data()
    data = data.merge(
        TrainingData([Message(data={"text": t, "intent": "bye"}) for t in ("bye", "adiós")])
    )
    component = LinearIntentClassifier.create({}, storage, Resource("intents"), context())
    component.train(data)
    assert ask(component, "yes please").get("intent")["name"] == "accept"


def test_an_intent_with_one_example_is_named(storage: LocalModelStorage) -> None:
    data = training_data().merge(TrainingData([Message(data={"text": "bye", "intent": "bye"})]))
    component = LinearIntentClassifier.create({}, storage, Resource("intents"), context())
    with pytest.raises(ValueError, match="bye"):
        component.train(data)
