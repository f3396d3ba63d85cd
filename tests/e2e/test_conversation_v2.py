"""Conversation v2 through every real part: the patient's own words, the exact SMS they get back,
and the rows. Claims only on an unambiguous yes, the safety order, and the patient's language."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from tests.e2e.conftest import Clinic

NY = ZoneInfo("America/New_York")
ES_DAYS = ("lun", "mar", "mie", "jue", "vie", "sab", "dom")
ES_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")


def spanish_slot(clinic: Clinic) -> tuple[str, str]:
    local = clinic.last_slot_start.astimezone(NY)
    return f"{ES_DAYS[local.weekday()]} {local.day} {ES_MONTHS[local.month - 1]}", f"{local:%H:%M}"


def one_offer(clinic: Clinic, language: str = "en") -> tuple[dict, int, str]:
    provider = clinic.provider()
    pid, phone = clinic.patient(language)
    cancellation = clinic.cancellation(provider)
    clinic.wait_for_texts(phone, 1)
    return cancellation, pid, phone


def test_spanish_yes_with_the_opening_mark_claims_and_the_reply_is_spanish(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)  # registered as English
    clinic.text(phone, "¡Sí!")
    day, clock = spanish_slot(clinic)
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == (
        f"Listo, su cita es el {day} a las {clock}, Main Street."
        " Para cambiarla, llame al 555-0100."
    )
    assert clinic.api("GET", f"/cancellations/{cancellation['id']}")["filled_by_patient_id"] == pid
    assert clinic.api("GET", f"/patients/{pid}")["preferred_language"] == "es"
    changed = clinic.sql(
        "SELECT data->>'language' FROM audit_events WHERE kind = 'patient_language_changed'"
        " AND patient_id = %s",
        (pid,),
    )
    assert changed == [("es",)]


def test_a_spanish_refusal_from_an_english_patient_is_answered_in_spanish(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)
    clinic.text(phone, "gracias pero no puedo ese día")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == "De acuerdo, no tomaremos esta cita. Sigue en la lista de espera."
    assert clinic.offers(cancellation["id"])[pid] == "declined"


def test_an_opt_out_beats_the_emergency_word(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)
    clinic.text(phone, "stop messaging me, it's not an emergency")
    clinic.wait_for(lambda: clinic.api("GET", f"/patients/{pid}")["opted_out"], what="opt-out")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == (
        "You're unsubscribed from Riverside Clinic texts and won't get more messages."
        " Reply START to resume."
    )
    assert clinic.offers(cancellation["id"])[pid] == "withdrawn"


def test_a_bereavement_gets_condolences_and_the_number_falls_silent(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)
    clinic.text(phone, "this was my mother's phone, she died in March")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == (
        "We're so sorry for your loss. We won't text this number again, and our staff will"
        " update the record."
    )
    patient = clinic.api("GET", f"/patients/{pid}")
    assert patient["opted_out"] is True and patient["wrong_number"] is True
    reasons = clinic.sql(
        "SELECT data->>'reason' FROM audit_events WHERE kind = 'handoff_requested'"
        " AND patient_id = %s",
        (pid,),
    )
    assert reasons == [("bereavement",)]
    assert clinic.offers(cancellation["id"])[pid] == "withdrawn"


def test_a_conditional_yes_is_asked_about_and_the_next_yes_claims(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)
    day, clock = clinic.slot_words()
    clinic.text(phone, "yes as long as it's with my usual doctor")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == (
        f"We can't promise that. The opening is {day} at {clock}, Main Street, as it is."
        " Reply YES to take it or NO to pass."
    )
    assert clinic.offers(cancellation["id"])[pid] == "pending"
    clinic.text(phone, "ok yes")
    assert clinic.wait_for_texts(phone, 3)[2].startswith("You're booked")
    assert clinic.offers(cancellation["id"])[pid] == "accepted"


def test_a_counter_proposal_names_the_offer(clinic: Clinic) -> None:
    cancellation, pid, phone = one_offer(clinic)
    day, clock = clinic.slot_words()
    clinic.text(phone, "could I come at 4 instead?")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == (
        f"Sorry, the time can't be changed: {day} at {clock}, Main Street. The offer still"
        " stands. Reply YES to take it or NO to pass."
    )
    assert clinic.offers(cancellation["id"])[pid] == "pending"


def test_a_picture_from_a_spanish_patient_is_answered_in_spanish(clinic: Clinic) -> None:
    _, pid, phone = one_offer(clinic, language="es")
    clinic.text(phone, "", media_urls=["https://example.org/photo.jpg"])
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert reply == "Lo sentimos, solo podemos leer mensajes de texto. Responda SI, NO o AYUDA."


def test_with_twilios_advanced_opt_out_a_stop_gets_one_answer_and_is_recorded(
    clinic: Clinic,
) -> None:
    clinic.simulator.post("/simulator/settings", json={"advanced_opt_out": True})
    cancellation, pid, phone = one_offer(clinic)
    clinic.text(phone, "STOP")
    clinic.wait_for(lambda: clinic.api("GET", f"/patients/{pid}")["opted_out"], what="opt-out")
    time.sleep(2)
    texts = [m for m in clinic.simulator.get("/simulator/messages", params={"to": phone}).json()]
    answers = [m["body"] for m in texts if m["direction"].startswith("outbound")][1:]
    assert len(answers) == 1 and answers[0].startswith("You have successfully been unsubscribed")
    assert clinic.offers(cancellation["id"])[pid] == "withdrawn"
