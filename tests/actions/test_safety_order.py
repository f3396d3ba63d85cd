"""The safety order decided in code: opt-out > bereavement > emergency > the claim guard > the rest;
and the language detector. Each case is a kind of miss seen on real replies."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from actions.language import ActionDetectLanguage, detect_language
from nlu_components.safety_order import WEAK_ACCEPT_CONFIDENCE, SafetyOrder, decide


def run(text: str, intent: str, confidence: float) -> tuple[str, float]:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}], add_to_output=True)
    SafetyOrder().process([message])
    result = message.get("intent")
    return result["name"], result["confidence"]


@pytest.mark.parametrize(
    ("text", "model_said", "decided"),
    [
        # an explicit opt-out wins over everything, the emergency override included
        ("stop messaging me, it's not an emergency", "emergency", "opt_out"),
        ("STOP", "accept", "opt_out"),
        ("PARAR", "accept", "opt_out"),
        ("Basta!", "decline", "opt_out"),
        ("alto", "accept", "opt_out"),
        ("cancelar", "decline", "opt_out"),
        ("no me escriban más", "decline", "opt_out"),
        ("dejen de mandarme mensajes por favor", "out_of_scope", "opt_out"),
        ("please stop texting me I have chest pain", "emergency", "opt_out"),
        ("quit texting me please, not an emergency", "emergency", "opt_out"),
        # a clause that is only a stop word
        ("I never asked for these, stop", "wrong_number", "opt_out"),
        ("ya no vivo ahi. basta ya", "wrong_number", "opt_out"),
        # then an emergency
        ("my chest hurts, I can't breathe", "accept", "emergency"),
        ("no puedo respirar", "decline", "emergency"),
        # a bereavement is never the 911 text
        ("this was my mother's phone, she died in March", "emergency", "bereavement"),
        ("he passed away last month", "decline", "bereavement"),
        ("mi esposo falleció", "out_of_scope", "bereavement"),
        ("she died of a stroke last spring, this is her daughter", "emergency", "bereavement"),
        ("he passed last week", "decline", "bereavement"),
        # a death with a request to stop: the bereavement path stops texts too and tells staff
        ("my father passed away, please stop texting this number", "opt_out", "bereavement"),
        # negation and contrast are declines, never claims
        ("no way I can say yes to that", "accept", "decline"),
        ("yes I saw it but I can't make it", "accept", "decline"),
        ("sí, pero no puedo ese día", "accept", "decline"),
        ("i dont want it", "accept", "decline"),
        ("absolutely not", "accept", "decline"),
        # a condition the offer cannot satisfy is asked about
        ("yes as long as it's with my usual doctor", "accept", "conditional_accept"),
        ("sí, siempre que sea con mi doctora", "accept", "conditional_accept"),
        ("sure, if my sister can drive me", "accept", "conditional_accept"),
        # ... even when the model read it as a counter-proposal or a question
        ("yes if I can be done before noon", "counter_proposal", "conditional_accept"),
        ("acepto si me dejan salir temprano", "offer_details", "conditional_accept"),
        # Spanish "si" without its accent is "if" when a clause follows it up to a comma
        ("si me atiende mi doctora, sí voy", "accept", "conditional_accept"),
        ("si la cubre mi seguro, sí la tomo", "accept", "conditional_accept"),
        ("sí, si es rapidito, tengo que regresar al trabajo", "accept", "conditional_accept"),
        # clear single-word keywords in Spanish
        ("ayuda", "out_of_scope", "help"),
        # a negated "write to me again" is an opt-out, even when the model heard "write to me"
        ("nunca me vuelvan a escribir", "opt_in", "opt_out"),
        ("no vuelvan a mandarme mensajes", "opt_in", "opt_out"),
        ("no quiero seguir recibiendo mensajes", "opt_in", "opt_out"),
        # asking for the texts back is an opt-in, even when the model heard "stop"
        ("undo stop", "opt_out", "opt_in"),
        ("unstop please", "opt_out", "opt_in"),
        ("undo unsubscribe", "opt_out", "opt_in"),
        ("por error puse alto, quiero seguir recibiendo mensajes", "opt_out", "opt_in"),
        ("vuelvan a escribirme porfa", "opt_out", "opt_in"),
        ("please resume the texts", "opt_out", "opt_in"),
        # nothing but punctuation is nothing to act on, never a yes
        ("?", "accept", "out_of_scope"),
        ("...", "accept", "out_of_scope"),
    ],
)
def test_the_safety_order(text: str, model_said: str, decided: str) -> None:
    assert run(text, model_said, 0.97) == (decided, 1.0 if decided != "decline" else 0.97)


def test_unrelated_text_read_as_yes_is_asked_about_not_claimed() -> None:
    assert run("I like turtles", "accept", 0.96) == ("accept", WEAK_ACCEPT_CONFIDENCE)


@pytest.mark.parametrize(
    "text",
    [
        "Yes, thanks!",
        "Hello, it's Tom, saw your message about the opening and yes I'd love it, been waiting ages",
    ],
)
def test_a_clear_yes_filed_elsewhere_becomes_a_yes_to_confirm(text: str) -> None:
    assert run(text, "thanks", 0.9) == ("accept", WEAK_ACCEPT_CONFIDENCE)


@pytest.mark.parametrize(
    "text",
    ["yes", "¡Sí!", "ok yes", "yes! can't wait to come in", "sounds good, see you then", "👍", "Y"],
)
def test_a_plain_yes_is_left_to_claim(text: str) -> None:
    assert decide(text, "accept", 0.97) is None


def test_text_me_again_later_is_left_to_the_model() -> None:
    # a defer ("text me again in January"), not an opt-in
    assert decide("text me again in January", "defer", 0.9) is None


def test_my_phone_died_is_not_a_bereavement() -> None:
    assert decide("my phone died yesterday, yes I want it", "accept", 0.95) is None


def test_our_own_intents_are_left_alone() -> None:
    assert run("/EXTERNAL_media_only", "EXTERNAL_media_only", 1.0) == ("EXTERNAL_media_only", 1.0)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¡Sí!", "es"),
        ("sí", "es"),
        ("gracias", "es"),
        ("no puedo, mejor la próxima semana", "es"),
        ("no me escriban mas", "es"),
        ("Yes, thanks!", "en"),
        ("can't make it, try me next week", "en"),
        ("thanks", "en"),
        ("no", None),
        ("ok", None),
        ("👍", None),
    ],
)
def test_the_language_of_a_message(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_language_slot_is_set_before_any_action_from_the_patients_words() -> None:
    from action_test_support import make_tracker, run_action, slots_set

    _, events = run_action(ActionDetectLanguage(), make_tracker("sí, la quiero"))
    assert slots_set(events) == {"language": "es"}
    _, events = run_action(ActionDetectLanguage(), make_tracker("ok"))
    assert events == []
    spanish_already = make_tracker("gracias", slots={"language": "es"})
    assert run_action(ActionDetectLanguage(), spanish_already)[1] == []


@pytest.mark.parametrize(
    ("text", "model_said"),
    [
        ("absolutely freezing out there", "out_of_scope"),
        ("yeah the traffic was awful", "out_of_scope"),
        ("definitely need a nap", "out_of_scope"),
        ("he passed the driving test", "out_of_scope"),
        # a phone that died is not a bereavement (that path silences the number for good)
        ("se me murió el celular, perdón por no contestar", "out_of_scope"),
        ("mi cel se murio jaja", "out_of_scope"),
        # an unaccented "sí" is still a yes
        ("si claro, ahí estaré", "accept"),
        ("si quiero, gracias", "accept"),
        ("si, a las 10 está perfecto, gracias", "accept"),
        ("could it be friday instead?", "counter_proposal"),
    ],
)
def test_chatter_and_questions_keep_the_models_intent(text: str, model_said: str) -> None:
    assert run(text, model_said, 0.9) == (model_said, 0.9)


@pytest.mark.parametrize("text", ["maybe yes", "yes or no?", "si no se", "sí, quizás"])
def test_a_yes_both_ways_is_asked_about(text: str) -> None:
    assert run(text, "accept", 0.97) == ("accept", WEAK_ACCEPT_CONFIDENCE)
    name, _ = run(text, "out_of_scope", 0.7)
    assert name == "out_of_scope"
