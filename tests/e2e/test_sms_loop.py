"""The whole SMS loop: staff cancel a slot, patients get real texts through the simulator, answer in
their own words through signed webhooks, and the database shows the outcome."""

from __future__ import annotations

import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.e2e.conftest import Clinic

NY = ZoneInfo("America/New_York")


def three_offers(clinic: Clinic, patients: int = 3) -> tuple[dict, list[tuple[int, str]]]:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(patients)]
    cancellation = clinic.cancellation(provider)
    for _, phone in people[:3]:
        assert clinic.wait_for_texts(phone, 1) == [clinic.offer_text()]
    return cancellation, people


def test_happy_path(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic)
    (winner, phone), (_, other1), (_, other2) = people
    assert clinic.text(phone, "yes!")["status"] in (200, 204)
    day, clock = clinic.slot_words()
    texts = clinic.wait_for_texts(phone, 2)
    assert texts[1] == f"You're booked: {day} at {clock}, Main Street. To change it, call 555-0100."
    view = clinic.api("GET", f"/cancellations/{cancellation['id']}")
    assert view["status"] == "filled" and view["filled_by_patient_id"] == winner
    notice = f"That opening on {day} at {clock} has been filled. You stay on the waitlist."
    assert clinic.wait_for_texts(other1, 2)[1] == notice
    assert clinic.wait_for_texts(other2, 2)[1] == notice
    entry_status = clinic.sql(
        "SELECT status FROM waitlist_entries WHERE patient_id = %s", (winner,)
    )
    assert entry_status == [("fulfilled",)]


def test_two_yes_at_the_same_moment(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic)
    (a, phone_a), (b, phone_b), _ = people
    answers: dict[str, dict] = {}
    threads = [
        threading.Thread(target=lambda p=p: answers.__setitem__(p, clinic.text(p, "YES")))
        for p in (phone_a, phone_b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replies = {p: clinic.wait_for_texts(p, 2)[1] for p in (phone_a, phone_b)}
    booked = [p for p, text in replies.items() if text.startswith("You're booked")]
    too_late = [
        p
        for p, text in replies.items()
        if text == "Sorry, that opening was just taken. You stay on the waitlist."
    ]
    assert len(booked) == 1 and len(too_late) == 1
    winners = clinic.sql(
        "SELECT patient_id FROM offers WHERE cancellation_id = %s AND state = 'accepted'",
        (cancellation["id"],),
    )
    assert winners == [((a if booked == [phone_a] else b),)]


def test_defer_to_next_week(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic, patients=4)
    (deferrer, phone), _, _, (fourth, fourth_phone) = people
    clinic.text(phone, "can't make it, try me next week")
    reply = clinic.wait_for_texts(phone, 2)[1]
    not_before = clinic.sql(
        "SELECT not_before FROM waitlist_entries WHERE patient_id = %s", (deferrer,)
    )[0][0]
    today = clinic.sql("SELECT (now() AT TIME ZONE 'America/New_York')::date")[0][0]
    assert not_before == today + timedelta(days=7 - today.weekday())  # Monday of next week
    assert (
        reply == f"OK, we'll check back starting {not_before:%a %b} {not_before.day}."
        " You stay on the waitlist."
    )
    assert clinic.offers(cancellation["id"])[deferrer] == "declined"
    assert clinic.wait_for_texts(fourth_phone, 1) == [clinic.offer_text()]
    assert clinic.offers(cancellation["id"])[fourth] == "pending"


def test_stop_opts_out_and_silences(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic, patients=4)
    (quitter, phone), (_, other), _, (fourth, _) = people
    clinic.text(phone, "STOP")
    assert clinic.wait_for(lambda: clinic.api("GET", f"/patients/{quitter}")["opted_out"])
    texts = clinic.wait_for_texts(phone, 2)
    assert "START" in texts[1]
    states = clinic.wait_for(
        lambda: (lambda s: s if s.get(fourth) == "pending" else None)(
            clinic.offers(cancellation["id"])
        )
    )
    assert states[quitter] == "withdrawn"
    clinic.text(other, "yes")
    clinic.wait_for_texts(other, 2)
    assert len(clinic.received(phone)) == 2  # no "slot filled" notice after STOP


def test_hold_expiry_refills_the_seat(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic, patients=4)
    first, (fourth, fourth_phone) = people[0][0], people[3]
    # let the first hold run out, as seven minutes would
    clinic.sql(
        "UPDATE offers SET expires_at = now() - interval '1 second'"
        " WHERE cancellation_id = %s AND patient_id = %s",
        (cancellation["id"], first),
    )
    assert clinic.wait_for_texts(fourth_phone, 1) == [clinic.offer_text()]
    states = clinic.offers(cancellation["id"])
    assert states[first] == "expired" and states[fourth] == "pending"


def test_forged_signature_changes_nothing(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic)
    phone = people[0][1]
    answer = clinic.text(phone, "yes", forge_signature=True)
    assert answer["status"] == 403
    assert clinic.api("GET", f"/cancellations/{cancellation['id']}")["status"] == "open"
    assert len(clinic.received(phone)) == 1
    events = clinic.sql(
        "SELECT count(*) FROM audit_events WHERE kind = 'cancellation_filled'"
        " AND cancellation_id = %s",
        (cancellation["id"],),
    )
    assert events == [(0,)]


def test_duplicate_message_sid_has_one_effect(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic, patients=4)
    decliner, phone = people[0]
    first = clinic.text(phone, "no thanks")
    clinic.wait_for_texts(phone, 2)
    again = clinic.text(phone, "no thanks", message_sid=first["message_sid"])
    assert again["status"] in (200, 204)
    assert clinic.offers(cancellation["id"])[decliner] == "declined"
    declines = clinic.sql(
        "SELECT count(*) FROM audit_events WHERE kind = 'offer_declined_by_patient' AND patient_id = %s",
        (decliner,),
    )
    assert declines == [(1,)]
    assert len(clinic.received(phone)) == 2  # one reply, not two


def test_rasa_down_while_an_offer_is_due(clinic: Clinic) -> None:
    provider = clinic.provider()
    pid, phone = clinic.patient()
    clinic.stack.stop("rasa")
    try:
        cancellation = clinic.cancellation(provider)
        assert clinic.offers(cancellation["id"]) == {pid: "pending"}
        clinic.wait_for(
            lambda: clinic.sql(
                "SELECT attempts FROM outbox o JOIN offers f ON f.id = o.offer_id"
                " WHERE f.patient_id = %s",
                (pid,),
            )[0][0]
            >= 1,
            what="a failed send attempt",
        )
        assert clinic.received(phone) == []
    finally:
        clinic.stack.start("rasa", timeout=300)
    assert clinic.wait_for_texts(phone, 1, timeout=150) == [clinic.offer_text()]
    # the text reaches the phone a moment before the backend records that it left
    sent_at = clinic.wait_for(
        lambda: (lambda row: row if row[0] else None)(
            clinic.sql("SELECT sent_at, expires_at FROM offers WHERE patient_id = %s", (pid,))[0]
        ),
        what="the send recorded",
    )
    assert sent_at[1] - sent_at[0] == timedelta(minutes=7)  # the hold starts when the text leaves


def test_a_twilio_500_is_retried_and_costs_nobody_their_place(clinic: Clinic) -> None:
    provider = clinic.provider()
    (a, phone_a), (b, phone_b) = clinic.patient(), clinic.patient()
    clinic.api("PATCH", f"/waitlist/{_entry(clinic, a)}", json={"urgent": True})
    clinic.fault(kind="http_500", to=phone_a, count=2)
    cancellation = clinic.cancellation(provider)
    assert clinic.wait_for_texts(phone_a, 1) == [clinic.offer_text()]
    assert clinic.wait_for_texts(phone_b, 1) == [clinic.offer_text()]
    assert clinic.offers(cancellation["id"]) == {a: "pending", b: "pending"}
    query = (
        "SELECT o.attempts, o.status FROM outbox o JOIN offers f ON f.id = o.offer_id"
        " WHERE f.patient_id = %s"
    )
    attempts = clinic.wait_for(
        lambda: (lambda rows: rows if rows[0][1] == "sent" else None)(clinic.sql(query, (a,))),
        what="the send recorded",
    )
    assert attempts == [(3, "sent")]


def test_an_invalid_number_fails_only_that_offer_and_refills(clinic: Clinic) -> None:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(4)]
    (a, phone_a), fourth = people[0], people[3]
    clinic.api("PATCH", f"/waitlist/{_entry(clinic, a)}", json={"urgent": True})
    clinic.fault(kind="invalid", to=phone_a, count=1)
    cancellation = clinic.cancellation(provider)
    clinic.wait_for(lambda: clinic.offers(cancellation["id"]).get(a) == "failed", what="failed")
    assert clinic.wait_for_texts(fourth[1], 1) == [clinic.offer_text()]
    assert clinic.received(phone_a) == []


def test_twilio_21610_marks_the_patient_opted_out(clinic: Clinic) -> None:
    provider = clinic.provider()
    (a, phone_a), (b, phone_b) = clinic.patient(), clinic.patient()
    clinic.api("PATCH", f"/waitlist/{_entry(clinic, a)}", json={"urgent": True})
    clinic.fault(kind="unsubscribed", to=phone_a, count=1)
    cancellation = clinic.cancellation(provider)
    clinic.wait_for(lambda: clinic.offers(cancellation["id"]).get(a) == "failed", what="failed")
    assert clinic.wait_for_texts(phone_b, 1) == [clinic.offer_text()]
    assert clinic.offers(cancellation["id"])[b] == "pending"
    assert clinic.api("GET", f"/patients/{a}")["opted_out"] is True


def test_undelivered_status_callback_frees_the_seat(clinic: Clinic) -> None:
    provider = clinic.provider()
    (a, phone_a), (b, phone_b) = clinic.patient(), clinic.patient()
    clinic.api("PATCH", f"/waitlist/{_entry(clinic, a)}", json={"urgent": True})
    clinic.fault(kind="undelivered", to=phone_a, count=1, error_code=30003)
    cancellation = clinic.cancellation(provider)
    clinic.wait_for(lambda: clinic.offers(cancellation["id"]).get(a) == "failed", what="failed")
    assert clinic.wait_for_texts(phone_b, 1) == [clinic.offer_text()]
    assert clinic.offers(cancellation["id"])[b] == "pending"


def test_backend_restart_in_the_middle_of_a_hold(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic, patients=4)
    first, (fourth, fourth_phone) = people[0][0], people[3]
    clinic.stack.kill("backend")
    clinic.sql(
        "UPDATE offers SET expires_at = now() - interval '1 second'"
        " WHERE cancellation_id = %s AND patient_id = %s",
        (cancellation["id"], first),
    )
    clinic.stack.start("backend")
    assert clinic.wait_for_texts(fourth_phone, 1) == [clinic.offer_text()]
    states = clinic.offers(cancellation["id"])
    assert states[first] == "expired" and states[fourth] == "pending"


def test_unclear_text_never_claims(clinic: Clinic) -> None:
    cancellation, people = three_offers(clinic)
    phone = people[0][1]
    clinic.text(phone, "purple elephant banana")
    reply = clinic.wait_for_texts(phone, 2)[1]
    assert "YES" in reply and "NO" in reply
    assert clinic.api("GET", f"/cancellations/{cancellation['id']}")["status"] == "open"


def test_staff_api_rejects_bad_token_and_bad_phone(clinic: Clinic) -> None:
    base = clinic.env["BACKEND_URL"]
    assert httpx.post(f"{base}/api/v1/providers", json={}).status_code == 401
    bad = clinic.backend.post("/api/v1/patients", json={"phone": "555-0100", "display_name": "A"})
    assert bad.status_code == 422 and bad.json()["field"] == "phone"


def _entry(clinic: Clinic, patient_id: int) -> int:
    return clinic.sql(
        "SELECT id FROM waitlist_entries WHERE patient_id = %s AND status = 'active'", (patient_id,)
    )[0][0]
