"""Patients' texts reach the webhook signed exactly as Twilio signs them."""

from __future__ import annotations

import httpx
from sms_simulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CLINIC_NUMBER,
    PATIENT,
    PUBLIC_BASE_URL,
    Receiver,
    RunningSimulator,
    send,
    start_simulator,
    stop_simulator,
)
from twilio.request_validator import RequestValidator

WEBHOOK_PATH = "/webhooks/twilio/webhook"
SIGNED_URL = PUBLIC_BASE_URL + WEBHOOK_PATH


def text_in(simulator: RunningSimulator, **payload: object) -> httpx.Response:
    return httpx.post(simulator.url + "/simulator/inbound", json=payload, timeout=10)


def test_inbound_is_signed_for_the_public_url(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    answer = text_in(simulator, **{"from": PATIENT, "body": "yes!"})
    assert answer.status_code == 200
    result = answer.json()
    assert result["status"] == 200
    assert result["signed_url"] == SIGNED_URL

    (request,) = receiver.received()
    assert request.path == WEBHOOK_PATH
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(SIGNED_URL, request.form, signature)
    # Signed for the public origin, not for the address it was posted to.
    assert not RequestValidator(AUTH_TOKEN).validate(
        receiver.url + WEBHOOK_PATH, request.form, signature
    )

    form = request.form
    assert form["MessageSid"] == result["message_sid"] == form["SmsSid"] == form["SmsMessageSid"]
    assert form["MessageSid"].startswith("SM") and len(form["MessageSid"]) == 34
    assert (form["From"], form["To"], form["Body"], form["AccountSid"]) == (
        PATIENT,
        CLINIC_NUMBER,
        "yes!",
        ACCOUNT_SID,
    )
    assert (form["NumMedia"], form["NumSegments"], form["SmsStatus"], form["ApiVersion"]) == (
        "0",
        "1",
        "received",
        "2010-04-01",
    )
    # Blank fields are sent, as Twilio does (and as the signature covers).
    assert ("FromCity", "") in request.params


def test_inbound_and_outbound_show_in_order(simulator: RunningSimulator) -> None:
    send(simulator, Body="Slot Tue 3:30 PM. Reply YES.")
    text_in(simulator, **{"from": PATIENT, "body": "YES"})
    send(simulator, Body="It's yours.")
    messages = httpx.get(simulator.url + "/simulator/messages", params={"phone": PATIENT}).json()
    assert [(message["direction"], message["body"]) for message in messages] == [
        ("outbound-api", "Slot Tue 3:30 PM. Reply YES."),
        ("inbound", "YES"),
        ("outbound-api", "It's yours."),
    ]
    assert messages[1]["webhook_status"] == 200
    from_patient = httpx.get(simulator.url + "/simulator/messages", params={"from": PATIENT}).json()
    assert [message["body"] for message in from_patient] == ["YES"]


def test_duplicate_delivery_resends_the_same_sid(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    first = text_in(simulator, **{"from": PATIENT, "body": "yes"}).json()
    again = text_in(
        simulator, **{"from": PATIENT, "body": "yes", "message_sid": first["message_sid"]}
    ).json()
    assert again["message_sid"] == first["message_sid"]
    requests = receiver.received()
    assert len(requests) == 2
    assert requests[0].form == requests[1].form
    # Shown once on the phone.
    assert len(httpx.get(simulator.url + "/simulator/messages").json()) == 1


def test_forged_signature_does_not_validate(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    receiver.answers[WEBHOOK_PATH] = (403, "text/plain", "invalid signature")
    result = text_in(simulator, **{"from": PATIENT, "body": "yes", "forge_signature": True}).json()
    assert result["status"] == 403
    assert result["forged_signature"] is True
    (request,) = receiver.received()
    assert not RequestValidator(AUTH_TOKEN).validate(
        SIGNED_URL, request.form, request.headers["X-Twilio-Signature"]
    )


def test_media_message(simulator: RunningSimulator, receiver: Receiver) -> None:
    result = text_in(
        simulator, **{"from": PATIENT, "body": "", "media_urls": ["https://example.org/a.png"]}
    ).json()
    assert result["message_sid"].startswith("MM")
    form = receiver.received()[0].form
    assert (form["NumMedia"], form["Body"], form["MediaUrl0"], form["MediaContentType0"]) == (
        "1",
        "",
        "https://example.org/a.png",
        "image/png",
    )


def test_twiml_message_replies_are_recorded(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    receiver.answers[WEBHOOK_PATH] = (
        200,
        "text/xml",
        "<?xml version='1.0'?><Response><Message>Thanks, got it</Message></Response>",
    )
    result = text_in(simulator, **{"from": PATIENT, "body": "hello"}).json()
    assert len(result["twiml_replies"]) == 1
    messages = httpx.get(simulator.url + "/simulator/messages", params={"to": PATIENT}).json()
    assert [(message["direction"], message["body"]) for message in messages] == [
        ("outbound-reply", "Thanks, got it")
    ]


def test_bad_inbound_requests(simulator: RunningSimulator, receiver: Receiver) -> None:
    for payload, field in [
        ({"from": "5551234567", "body": "yes"}, "from"),
        ({"body": "yes"}, "from"),
        ({"from": PATIENT, "body": "  "}, "body"),
        ({"from": PATIENT, "body": 5}, "body"),
        ({"from": PATIENT, "body": "x", "message_sid": "SM-../x"}, "message_sid"),
    ]:
        answer = text_in(simulator, **payload)
        assert answer.status_code == 400, payload
        assert answer.json()["field"] == field
    assert receiver.received() == []


def test_unreachable_webhook_answers_502() -> None:
    simulator = start_simulator("http://127.0.0.1:9" + WEBHOOK_PATH)
    try:
        answer = text_in(simulator, **{"from": PATIENT, "body": "yes"})
        assert answer.status_code == 502
        assert answer.json()["status"] is None
        (message,) = httpx.get(simulator.url + "/simulator/messages").json()
        assert message["webhook_status"] is None
    finally:
        stop_simulator(simulator)


def test_advanced_opt_out_answers_keywords_itself_and_tells_the_webhook(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    switched = httpx.post(simulator.url + "/simulator/settings", json={"advanced_opt_out": True})
    assert switched.json() == {"advanced_opt_out": True}
    text_in(simulator, **{"from": PATIENT, "body": "Stop"})
    text_in(simulator, **{"from": PATIENT, "body": "stop texting me"})  # not a keyword
    (stop, phrase) = receiver.received()
    assert stop.form["OptOutType"] == "STOP"
    assert "OptOutType" not in phrase.form
    replies = [
        m["body"]
        for m in httpx.get(simulator.url + "/simulator/messages", params={"to": PATIENT}).json()
        if m["direction"] == "outbound-reply"
    ]
    assert replies == [
        "You have successfully been unsubscribed. You will not receive any more messages from "
        "this number. Reply START to resubscribe."
    ]
    # Twilio blocks texts to a number that sent STOP, until START
    assert send(simulator).json()["code"] == 21610
    text_in(simulator, **{"from": PATIENT, "body": "START"})
    assert receiver.received()[-1].form["OptOutType"] == "START"
    assert send(simulator).status_code == 201


def test_without_advanced_opt_out_keywords_reach_the_webhook_plainly(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    text_in(simulator, **{"from": PATIENT, "body": "STOP"})
    (request,) = receiver.received()
    assert "OptOutType" not in request.form
    assert send(simulator).status_code == 201
