"""SMS rules for every response in domain.yml, and actions wired to the domain."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import yaml
from rasa_sdk.executor import ActionExecutor

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
RESPONSES: dict[str, list[dict]] = DOMAIN["responses"]

# GSM 03.38 basic character set (no extension table: those cost two characters).
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

REALISTIC = {
    "clinic_name": "Riverside Clinic",
    "clinic_phone": "555-0100",
    "slot_date": "Tue Dec 1",
    "slot_time": "3:30 PM",
    "location": "Main Street Clinic",
    "hold_minutes": "7",
    "minutes_left": "5",
    "not_before_text": "Mon Dec 7",
}
SPANISH_REALISTIC = {**REALISTIC, "slot_date": "mar 1 dic", "not_before_text": "lun 7 dic"}


def variations():
    for name, items in RESPONSES.items():
        for item in items:
            yield pytest.param(name, item, id=f"{name}-{'es' if item.get('condition') else 'en'}")


def render(text: str, values: dict[str, str]) -> str:
    return string.Formatter().vformat(text, (), values)


@pytest.mark.parametrize(("name", "item"), list(variations()))
def test_plain_gsm7_only(name: str, item: dict) -> None:
    text = render(item["text"], SPANISH_REALISTIC)
    assert set(text) <= GSM7, f"{name}: non-GSM-7 {sorted(set(text) - GSM7)}"


@pytest.mark.parametrize(("name", "item"), list(variations()))
def test_template_variables_are_known(name: str, item: dict) -> None:
    variables = set(re.findall(r"{(\w+)}", item["text"]))
    assert variables <= set(REALISTIC), f"{name}: {variables - set(REALISTIC)}"


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_every_response_has_a_spanish_variation(name: str) -> None:
    conditions = [item.get("condition") for item in RESPONSES[name]]
    assert [{"type": "slot", "name": "language", "value": "es"}] in conditions
    assert None in conditions, f"{name}: needs an unconditional (English) default"


@pytest.mark.parametrize("language_values", [REALISTIC, SPANISH_REALISTIC])
def test_offer_fits_one_sms(language_values) -> None:
    for item in RESPONSES["utter_offer"]:
        text = render(item["text"], language_values)
        assert len(text) <= 160, f"{len(text)}: {text}"


def test_help_text_has_what_carriers_require() -> None:
    english = next(i for i in RESPONSES["utter_help"] if not i.get("condition"))
    text = render(english["text"], REALISTIC)
    for part in [
        "Riverside Clinic",
        "openings",
        "per week",
        "Msg & data rates may apply",
        "555-0100",
        "Reply STOP to opt out",
    ]:
        assert part in text


def test_opt_out_reply_says_how_to_resume() -> None:
    for item in RESPONSES["utter_opted_out"]:
        assert "START" in item["text"]


def test_key_wording() -> None:
    english = {
        name: next(i["text"] for i in items if not i.get("condition"))
        for name, items in RESPONSES.items()
    }
    assert (
        english["utter_too_late"] == "Sorry, that opening was just taken. You stay on the waitlist."
    )
    assert english["utter_no_open_offer"] == (
        "There's no open offer right now, but you're still on the list."
    )
    # the text is kept and applied when the part is back, so the patient need not resend it
    assert english["utter_backend_down"] == (
        "We got your message but can't act on it right now. We'll text you back as soon as we can."
    )
    assert english["utter_confirm_accept"] == (
        "Just to confirm: do you want the {slot_time} opening on {slot_date}? Reply YES or NO."
    )
    assert "911" in english["utter_emergency"]


def test_clinic_details_are_edited_in_one_place() -> None:
    slots = DOMAIN["slots"]
    assert slots["clinic_name"]["initial_value"] == "Riverside Clinic"
    assert slots["clinic_phone"]["initial_value"] == "555-0100"
    for items in RESPONSES.values():
        for item in items:
            assert "Riverside" not in item["text"] and "555-0100" not in item["text"]


def test_domain_actions_are_all_implemented() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(DOMAIN["actions"]) == set(executor.actions)
