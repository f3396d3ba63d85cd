"""The last word on a message's intent, in a fixed order decided in code:

1. an explicit opt-out wins over everything: a single carrier keyword (STOP, PARAR, BASTA ...), a
   clause that is only a stop word ("I never asked for these, stop") or a phrase that asks for no
   more texts ("stop messaging me", "no me escriban mas");
2. then a death told in the past tense ("this was my mother's phone, she died in March", "he died
   of a heart attack in August"): condolences and no more texts, never the 911 reply. It is checked
   before the opt-out phrases because "she passed, please stop texting her" must reach staff too;
   the bereavement path silences the number just as an opt-out does;
3. then an emergency ("chest pain", "no puedo respirar"), unless the message says it is not one;
4. then the claim guard: a slot is only claimed on an unambiguous yes. A predicted `accept` that is
   negated or followed by a refusal ("no way I can say yes", "yes ... but I can't") becomes
   `decline`; one with a condition the offer cannot promise ("yes as long as it's with my usual
   doctor") becomes `conditional_accept`; one without any word of assent ("I like turtles") keeps
   `accept` below the claim threshold, so the patient is asked to confirm. A message the model filed
   under thanks/greet/fallback but says a clear yes ("Yes, thanks!", a long friendly message with
   "yes I'd love it" in it) becomes a weak `accept` (confirmed before any claim), instead of
   "You're welcome" or "Sorry, I didn't get that".
5. everything else is the classifier's.

Single-word START/UNSTOP and HELP/INFO/AYUDA are decided here too (from carrier_keywords.py).
Patterns run over lower-case text without accents, so "más" and "mas" are one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.carrier_keywords import DEFAULT_KEYWORDS, keyword_intent, override_intent
from nlu_components.emergency_phrases import is_emergency

# Spanish carrier-style keywords; CANCELAR only when it stands alone, as with CANCEL.
KEYWORDS: dict[str, list[str]] = {
    "opt_out": [*DEFAULT_KEYWORDS["opt_out"], "parar", "alto", "basta", "cancelar"],
    "opt_in": [*DEFAULT_KEYWORDS["opt_in"], "comenzar"],
    "help": [*DEFAULT_KEYWORDS["help"], "ayuda"],
}

OPT_OUT_PHRASES = [
    r"\b(?:stop|quit|cease|enough) (?:texting|messaging|sending|contacting|calling|bothering|"
    r"spamming)\b",
    r"\b(?:do ?n.?t|do not|never|dont) (?:text|message|contact|sms) (?:me|us|this number)\b",
    r"\bno (?:more )?(?:texts|messages)\b(?! (?:yet|today))",
    r"\bunsubscribe\b",
    r"\bopt(?: |-)?(?:me )?out\b",
    r"\b(?:remove|take|delete) (?:my|this) (?:number|phone)\b",
    r"\b(?:remove|take) me off (?:your|the|this) (?:texting|messaging|sms|text) list",
    r"\bleave me alone\b",
    r"\bno (?:me|nos) (?:escriban|escribas|manden|mandes|envien|envies|contacten|molesten)\b",
    r"\bdej(?:en|a|e) de (?:escribir|mandar|enviar|molestar)",
    r"\b(?:ya )?no quiero (?:recibir )?(?:mas )?(?:mensajes|textos)\b",
    r"\bno (?:mas|quiero mas) mensajes\b",
    r"\b(?:borren|quiten|eliminen) mi numero\b",
    r"\b(?:no|nunca) (?:me |nos )?(?:vuelvan|vuelvas) a (?:escribir|mandar|enviar|contactar)",
    r"\bno quiero seguir recibiendo\b",
]
# A clause that is nothing but a stop word: "I never signed up for this, stop", "basta ya".
STOP_CLAUSES = frozenset(
    {
        "stop",
        "stop it",
        "stop now",
        "please stop",
        "stop please",
        "stop pls",
        "unsubscribe",
        "parar",
        "para ya",
        "basta",
        "basta ya",
        "ya basta",
        "alto",
        "alto ya",
    }
)
CLAUSE_BREAK = re.compile(r"[,.;:!?\n]+")
# Asking to be texted again names the opt-out it undoes ("undo unsubscribe", "unstop please"): it
# is not an opt-out, and the model decides among opt_in and the rest.
UNDOES_OPT_OUT = re.compile(
    r"\b(?:undo|reverse|cancel|take back) (?:my |the )?(?:unsubscribe|opt.?out|stop)\b|"
    r"\bunstop\b|\bresubscribe\b|\bre.?subscribe\b"
)
# Asking for the texts back, in so many words: opt_in whatever the model ranked first (the model
# confuses "vuelvan a escribirme" with "no me vuelvan a escribir"). Checked after the opt-out
# phrases, so a negated one stays an opt-out. Not "text me again": "text me again in January" is a
# defer, which the model tells apart.
RESUMES_TEXTS = re.compile(
    r"\b(?:start|resume) (?:sending|texting)\b"
    r"|\b(?:re.?enable|resume|restart|turn (?:back )?on) (?:the |my )?(?:texts|messages|sms)\b"
    r"|\bvuelvan a (?:escribirme|mandarme|enviarme)\b|\bme vuelvan a (?:escribir|mandar|enviar)\b"
    r"|\bseguir recibiendo\b|\breanud\w* (?:los )?mensajes\b|\bactiv\w* (?:los )?mensajes\b"
)
# Any negation and the resume phrase decides nothing: "no quiero seguir recibiendo mensajes".
NEGATION = re.compile(r"\b(?:no|not|don.?t|dont|never|nunca|ni|stop)\b|n't\b")
# Nothing but punctuation ("?", "...", "."): nothing to act on, and never a yes.
NO_WORDS = re.compile(r"^[\s.,;:!?¿¡'\"()\-_*~]*$")
# "it's not an emergency" mentions the word without reporting one.
NOT_AN_EMERGENCY = re.compile(
    r"\b(?:not|isn.?t|is not|no|nothing|never|wasn.?t) (?:an? |una? )?(?:emergency|urgent|urgencia)"
    r"|\bno (?:es|era|hay) (?:una |ninguna )?(?:emergencia|urgencia)"
)
EMERGENCY_WORD = re.compile(r"\b(?:emergency|emergencia)\b")
BEREAVEMENT_PHRASES = [
    # people only: "my phone died" is not a bereavement
    r"\b(?:she|he|mom|mum|mother|dad|father|husband|wife|son|daughter|patient|grandma|grandpa|"
    r"grandmother|grandfather|brother|sister|aunt|uncle|partner) (?:has |had )?"
    r"(?:died|passed away|passed on)\b",
    r"\bpassed away\b",
    r"\b(?:she|he) (?:is|has) (?:gone|passed)\b",
    # "she passed in September", "he passed last week"; not "he passed the test"
    r"\b(?:she|he|mom|mum|mother|dad|father|husband|wife) passed (?:in|on|last|this|recently|earlier|"
    r"a few|\d)",
    r"\bis (?:deceased|dead|no longer with us)\b",
    r"\b(?:was|belonged to) my (?:late )?\w+(?:'s)? (?:phone|number)\b.*\b(?:died|passed)\b",
    r"\bmy late (?:mother|father|mom|dad|husband|wife|son|daughter|brother|sister)\b",
    r"\bfalleci[oó]\b|\bfallecio\b|\bfallecida?\b|\bmuri[oó]\b|\bmurio\b",
    r"\bya no esta con nosotros\b",
    r"\bq\.?e\.?p\.?d\b|\bdescanse en paz\b|\brest in peace\b",
]
# Things, not people: "se me murio el celular", "my phone's battery died".
DEVICE_DIED = re.compile(
    r"\b(?:phone|cell|cellphone|battery|telefono|celular|cel|bateria|pila|carro|coche|car|laptop|"
    r"compu|computadora|tele|tv|planta|plant)\b(?:\s+\w+){0,2}\s+(?:died|dead|muri|murio)\b|"
    r"\b(?:died|murio|muri)\s+(?:el|la|mi)\s+(?:celular|telefono|cel|bateria|pila|carro|coche|"
    r"compu|computadora|tele|planta)\b"
)
NEGATED_YES = [
    r"\b(?:can.?t|cannot|can not|won.?t|will not|couldn.?t|could not|not) (?:\w+ ){0,2}"
    r"(?:say yes|accept|take it|make it|come|do it|go|be there|attend)\b",
    r"\bno way\b",
    r"\b(?:don.?t|do not|dont) (?:\w+ ){0,2}(?:want|need|like) (?:it|that|this|the)\b",
    r"\b(?:absolutely|certainly|definitely|of course|hell) not\b|\bnot interested\b",
    r"\bnot (?:this|that) (?:one|time)\b",
    r"\b(?:unable|not able) to\b",
    r"\bno (?:puedo|podre|podria|voy a poder)\b",
    r"\bno (?:me )?(?:la )?(?:quiero|acepto|tomo)\b",
    r"\bimposible\b",
]
# "yes ... but I can't", "sí, pero no puedo": a refusal after the yes
CONTRAST = re.compile(r"\b(?:but|though|although|except|pero|aunque|sin embargo)\b(?P<rest>.*)$")
REFUSAL_AFTER_CONTRAST = re.compile(
    r"\b(?:can.?t|cannot|can not|won.?t|couldn.?t|not|no|unable|busy|working|imposible|"
    r"ocupad[oa]|trabajo)\b"
)
CONDITIONS = [
    r"\b(?:as long as|only if|provided (?:that )?|so long as|on condition)\b",
    # any "if" attached to a yes is a condition, but "if possible" or "if you want"
    r"\bif\b(?! (?:possible|you (?:want|like|need|prefer)|that.?s ok|ok)\b)",
    r"\b(?:with|w/) (?:my|the same) (?:usual |regular |own )?(?:doctor|dr|provider|physician|np)\b",
    r"\bsiempre (?:y )?(?:que|cuando)\b",
    r"\bsolo si\b|\bsolamente si\b|\bcon tal (?:de )?que\b",
    r"\bsi (?:hay|me dejan|se puede|puedo (?:llevar|traer|ir con)|no es|tengo que)\b",
    r"\bsi es con\b|\bcon (?:mi|el mismo|la misma) (?:doctor|doctora|medico|medica)\b",
]
SPANISH_IF = re.compile(
    r"(?:^|,)\s*si\s+(?!(?:por favor|porfa|claro|gracias|quiero|la quiero|lo quiero|acepto|voy|"
    r"puedo|me interesa|perfecto|ok|va|dale|vale|seño|señor|señora|ahí|allí|estaré|la tomo|"
    r"me la quedo|cuenten|con gusto|de acuerdo|está bien|esta bien|porfavor)\b)[^,.!?]{6,},"
)
# Words of assent: without one, a predicted accept is asked about before anything is claimed.
ASSENT = re.compile(
    r"\b(?:yes|yess+|yeah|yea|yep|yup|ya|ok|okay|okey|k|sure|certainly|absolutely|definitely|"
    r"of course|please|pls|plz|book|booked|take it|i.?ll take|want it|works|work for me|"
    r"sounds good|perfect|great|i.?m in|count me in|deal|confirm|confirmed|accept|be there|"
    r"see you|i.?ll come|coming|put me|sign me|love to|love it|would love|si|claro|"
    r"vale|dale|listo|perfecto|acepto|la tomo|la quiero|lo tomo|me interesa|por supuesto|"
    r"porfa|por favor|ahi estare|alli estare|cuenten conmigo|de acuerdo|sale|andale|bueno)\b"
)
ASSENT_SIGNS = re.compile("[\U0001f44d\U0001f44c\u2705\u2714\U0001f64c]")  # thumbs up, ok, check
# Both ways at once ("maybe yes", "yes or no", "si no se"): asked about, never claimed.
AMBIVALENT = re.compile(
    r"\b(?:maybe|perhaps|not sure|idk|quizas?|tal vez|no se(?! preocup)|no estoy segur[oa])\b|"
    r"\b(?:yes|si)\W+(?:or\W+|o\W+)?no\b|\bno\W+(?:or\W+|o\W+)?(?:yes|si)\b"
)
# A yes that opens the message: with a condition it is a conditional yes even when the model read
# it as a counter-proposal or a question ("yes if you can promise I'm out by 10:30").
LEADING_ASSENT = re.compile(
    r"^\W*(?:yes|yeah|yep|yup|ok|okay|sure|si|claro|acepto|vale|dale|bueno)\b"
)
LONE_Y = re.compile(r"^\W*y\W*$")  # "Y", the shortest yes
# A clear yes in a message the model filed elsewhere ("Yes, thanks!", a long friendly message).
# Under thanks or a greeting, an opening yes counts ("Yes, thanks!"); under out-of-scope or the
# fallback it takes "yes" itself or a phrase that takes the slot, since "yeah the traffic was awful"
# and "absolutely freezing" are chatter.
OPENING_YES = re.compile(r"^\W*(?:yes|yess+|yeah|yep|yup|si)\b")
CLEAR_YES = re.compile(
    r"\byes\b|\bi.?(?:ll|will) take it\b|\bi.?d love (?:it|to)\b|\bcount me in\b|"
    r"\bla (?:tomo|quiero)\b|\bclaro que si\b"
)
WEAK_ACCEPT_CONFIDENCE = 0.6  # below the claim threshold (0.80): the patient is asked to confirm
SAFETY_INTENTS = frozenset({"opt_out", "opt_in", "help", "emergency", "bereavement"})


def plain(text: str) -> str:
    """Lower case, no accents, straight apostrophes."""
    decomposed = unicodedata.normalize(
        "NFKD", text.casefold().replace("\u2019", "'").replace("\u2018", "'")
    )
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _any(patterns: list[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


_OPT_OUT = [re.compile(p) for p in OPT_OUT_PHRASES]
_BEREAVEMENT = [re.compile(p) for p in BEREAVEMENT_PHRASES]
_NEGATED_YES = [re.compile(p) for p in NEGATED_YES]
_CONDITIONS = [re.compile(p) for p in CONDITIONS]
_KEYWORDS = {intent: words for intent, words in KEYWORDS.items()}


def reports_emergency(text: str) -> bool:
    """An emergency phrase, unless the only one is the word "emergency" said to be absent."""
    if not is_emergency(text):
        return False
    flat = plain(text)
    if NOT_AN_EMERGENCY.search(flat):
        return is_emergency(EMERGENCY_WORD.sub(" ", NOT_AN_EMERGENCY.sub(" ", flat)))
    return True


# eagerness, not refusal: "can't wait to come"
EAGER = re.compile(r"\b(?:can.?t|cannot|can not) wait\b|\bno problem\b|\bwhy not\b")


def is_refusal(flat: str) -> bool:
    flat = EAGER.sub(" ", flat)
    if _any(_NEGATED_YES, flat):
        return True
    contrast = CONTRAST.search(flat)
    return bool(contrast and REFUSAL_AFTER_CONTRAST.search(contrast.group("rest")))


def asks_to_stop(flat: str) -> bool:
    """A phrase, or a clause of its own, that asks for no more texts."""
    if UNDOES_OPT_OUT.search(flat):
        return False
    clauses = (clause.strip() for clause in CLAUSE_BREAK.split(flat))
    return _any(_OPT_OUT, flat) or any(clause in STOP_CLAUSES for clause in clauses)


def asks_for_texts(flat: str) -> bool:
    """ "undo stop", "unstop", "vuelvan a escribirme": the texts back, unless negated."""
    if UNDOES_OPT_OUT.search(flat):
        return True
    return bool(RESUMES_TEXTS.search(flat)) and not NEGATION.search(flat)


def has_condition(text: str, flat: str) -> bool:
    """A condition attached to the yes: "as long as ...", "only if ...", "si me atiende mi doctora".

    Spanish "si" without its accent is "if" ("si la cubre mi seguro, sí la tomo"); patients also
    drop the accent of "sí" (yes), so an unaccented "si" only counts as "if" when a clause of a
    few words follows it up to a comma, and that clause does not begin with a word of assent.
    """
    return _any(_CONDITIONS, flat) or bool(SPANISH_IF.search(text.casefold()))


def decide(text: str, intent: str | None, confidence: float) -> tuple[str, float] | None:
    """The intent (and confidence) the safety order imposes, or None to keep the classifier's."""
    keyword = keyword_intent(text, _KEYWORDS)
    if keyword is not None:
        return keyword, 1.0
    flat = plain(text)
    # A death told in the past tense is a bereavement, even when it names the cause ("he died of a
    # heart attack in August") or asks us to stop ("she passed, please stop texting her"): the
    # bereavement path stops every text to the number, as an opt-out does, and also tells staff.
    if _any(_BEREAVEMENT, flat) and not DEVICE_DIED.search(flat):
        return "bereavement", 1.0
    if asks_to_stop(flat):
        return "opt_out", 1.0
    if reports_emergency(text):
        return "emergency", 1.0
    if asks_for_texts(flat):
        return "opt_in", 1.0
    if NO_WORDS.match(flat):
        return "out_of_scope", 1.0
    if intent in SAFETY_INTENTS:
        return None
    if intent == "accept":
        if is_refusal(flat):
            return "decline", max(confidence, 0.9)
        if has_condition(text, flat):
            return "conditional_accept", 1.0
        if AMBIVALENT.search(flat):
            return "accept", min(confidence, WEAK_ACCEPT_CONFIDENCE)
        if not (ASSENT.search(flat) or ASSENT_SIGNS.search(text) or LONE_Y.match(flat)):
            return "accept", min(confidence, WEAK_ACCEPT_CONFIDENCE)
        return None
    if intent in ("counter_proposal", "offer_details") and LEADING_ASSENT.search(flat):
        if has_condition(text, flat) and not is_refusal(flat):
            return "conditional_accept", 1.0
    said_yes = CLEAR_YES.search(flat) or (
        intent in ("thanks", "greet") and OPENING_YES.search(flat)
    )
    if intent in ("thanks", "greet", "out_of_scope", "nlu_fallback") and said_yes:
        if not (is_refusal(flat) or has_condition(text, flat) or AMBIVALENT.search(flat)):
            return "accept", WEAK_ACCEPT_CONFIDENCE
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyOrder(GraphComponent):
    """Applies the fixed safety order to the classifiers' intent (runs last in the pipeline)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyOrder:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text or text.startswith("/"):
                continue  # an intent sent by our own code, not a patient's words
            predicted = message.get(INTENT) or {}
            decision = decide(
                text,
                predicted.get(INTENT_NAME_KEY),
                float(predicted.get(PREDICTED_CONFIDENCE_KEY) or 0.0),
            )
            if decision is None:
                continue
            intent, confidence = decision
            override_intent(message, intent, confidence)
        return messages
