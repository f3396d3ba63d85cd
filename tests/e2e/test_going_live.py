"""What the clinic's IT person checks before putting the product on a real number, behind one public
origin whose proxy sends /webhooks/twilio/status to the backend and the rest to Rasa: delivery reports
touch only the message they report, a Twilio outage costs nobody their place, a text sent while the
action server is down is applied when it is back, and nothing reaches a stranger."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from twilio.request_validator import RequestValidator

from launcher.stack import SIMULATOR_AUTH_TOKEN
from tests.e2e.conftest import Clinic


def report_status(clinic: Clinic, message: dict, status: str, error_code: str = "30003") -> int:
    """Twilio's status callback for one message, signed as Twilio signs it, to the URL the
    message carried (the public origin, with whatever query string we gave Twilio)."""
    url = message["status_callback"]
    params = {
        "MessageSid": message["sid"],
        "MessageStatus": status,
        "SmsStatus": status,
        "To": message["to"],
        "From": message["from"],
        "ErrorCode": error_code,
        "AccountSid": clinic.env["TWILIO_ACCOUNT_SID"],
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(SIMULATOR_AUTH_TOKEN).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}).status_code


def test_reports_about_a_reply_or_a_notice_leave_the_pending_offer_alone(clinic: Clinic) -> None:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(4)]
    first = clinic.cancellation(provider)
    (winner, winner_phone), (holder, holder_phone) = people[0], people[1]
    for _, phone in people[:3]:
        clinic.wait_for_texts(phone, 1)
    clinic.text(winner_phone, "yes")
    notice = clinic.wait_for_texts(holder_phone, 2)[1]
    assert notice.startswith("That opening on")
    second = clinic.cancellation(provider, starts_in=timedelta(days=3))
    assert clinic.wait_for_texts(holder_phone, 3)[2] == clinic.offer_text()
    assert clinic.offers(second["id"])[holder] == "pending"

    holder_texts = clinic.messages(holder_phone)
    notice_message = next(m for m in holder_texts if m["body"] == notice)
    assert "ref=outbox-" in notice_message["status_callback"]
    assert report_status(clinic, notice_message, "undelivered") == 204
    # a reply to the patient's own text (HELP) is reported undelivered too
    clinic.text(holder_phone, "HELP")
    clinic.wait_for_texts(holder_phone, 4)
    reply_message = clinic.messages(holder_phone)[-1]
    assert report_status(clinic, reply_message, "undelivered") == 204
    time.sleep(2)
    assert clinic.offers(second["id"])[holder] == "pending"
    failures = clinic.sql(
        "SELECT count(*) FROM offers WHERE patient_id = %s AND state = 'failed'", (holder,)
    )
    assert failures == [(0,)]
    # Twilio replays and reorders reports: the delivered offer stays pending
    offer_message = clinic.messages(holder_phone)[2]
    replay = f"/simulator/messages/{offer_message['sid']}/replay_callbacks"
    clinic.simulator.post(replay, json={"order": "reverse"}).raise_for_status()
    time.sleep(1)
    assert clinic.offers(second["id"])[holder] == "pending"
    assert winner in clinic.offers(first["id"])


def test_an_undelivered_offer_fails_once_however_often_it_is_reported(clinic: Clinic) -> None:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(5)]
    (a, phone_a) = people[0]
    clinic.api("PATCH", f"/waitlist/{_entry(clinic, a)}", json={"urgent": True})
    clinic.fault(kind="undelivered", to=phone_a, count=1, error_code=30003)
    cancellation = clinic.cancellation(provider)
    clinic.wait_for(lambda: clinic.offers(cancellation["id"]).get(a) == "failed", what="failed")
    message = clinic.messages(phone_a)[0]
    for order in ("same", "reverse"):
        replay = f"/simulator/messages/{message['sid']}/replay_callbacks"
        clinic.simulator.post(replay, json={"order": order}).raise_for_status()
    time.sleep(1)
    states = clinic.offers(cancellation["id"])
    assert list(states.values()).count("failed") == 1
    assert list(states.values()).count("pending") == 3  # one refill, not three
    failed_events = clinic.sql(
        "SELECT count(*) FROM audit_events WHERE kind = 'offer_failed' AND patient_id = %s", (a,)
    )
    assert failed_events == [(1,)]


def _entry(clinic: Clinic, patient_id: int) -> int:
    return clinic.sql(
        "SELECT id FROM waitlist_entries WHERE patient_id = %s AND status = 'active'", (patient_id,)
    )[0][0]


def test_a_90_second_twilio_outage_ends_with_the_top_three_texted_and_nobody_failed(
    clinic: Clinic,
) -> None:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(6)]
    clinic.fault(kind="http_500", seconds=90)
    started = time.monotonic()
    cancellation = clinic.cancellation(provider)
    time.sleep(30)
    assert all(clinic.received(phone) == [] for _, phone in people)
    health = clinic.api("GET", "/messaging")
    assert health["paused"] is True and health["consecutive_failures"] >= 5
    for _, phone in people[:3]:
        assert clinic.wait_for_texts(phone, 1, timeout=150) == [clinic.offer_text()]
    took = time.monotonic() - started
    assert took >= 90
    states = clinic.offers(cancellation["id"])
    assert states == {pid: "pending" for pid, _ in people[:3]}
    assert all(clinic.received(phone) == [] for _, phone in people[3:])
    assert clinic.api("GET", "/messaging")["paused"] is False
    ready = httpx.get(clinic.env["BACKEND_URL"] + "/health/ready")
    assert ready.status_code == 200


def test_stop_sent_while_the_action_server_is_dead_is_applied_when_it_is_back(
    clinic: Clinic,
) -> None:
    provider = clinic.provider()
    people = [clinic.patient() for _ in range(3)]
    cancellation = clinic.cancellation(provider)
    quitter, phone = people[0]
    clinic.wait_for_texts(phone, 1)
    clinic.stack.kill("actions")
    try:
        answer = clinic.text(phone, "please stop texting me")
        assert answer["status"] == 200
        time.sleep(20)
        assert clinic.api("GET", f"/patients/{quitter}")["opted_out"] is False
    finally:
        clinic.stack.start("actions")
    back = time.monotonic()
    clinic.wait_for(
        lambda: clinic.api("GET", f"/patients/{quitter}")["opted_out"], timeout=120, what="opt-out"
    )
    assert time.monotonic() - back < 120
    texts = clinic.wait_for_texts(phone, 2)
    assert "START" in texts[1]
    assert clinic.offers(cancellation["id"])[quitter] == "withdrawn"
    inbox = clinic.sql(
        "SELECT status, body FROM inbound_messages WHERE phone = %s ORDER BY received_at", (phone,)
    )
    assert inbox == [("done", None)]


def test_the_action_server_refuses_strangers(clinic: Clinic) -> None:
    url = f"http://127.0.0.1:{clinic.env['ACTIONS_PORT']}/webhook"
    forged = {
        "next_action": "action_accept",
        "tracker": {
            "sender_id": "+12025550103",
            "latest_message": {"message_id": "x", "text": "yes", "intent": {"name": "accept"}},
            "events": [],
            "slots": {},
        },
        "domain": {},
    }
    assert httpx.post(url, json=forged).status_code == 401
    assert httpx.post(url, json=forged, headers={"Authorization": "Bearer guess"}).status_code == 401


def test_oversized_bodies_are_refused(clinic: Clinic) -> None:
    big = {"Body": "x" * (70 * 1024)}
    webhook = clinic.public_url + "/webhooks/twilio/webhook"
    assert httpx.post(webhook, data=big).status_code == 413
    api = clinic.env["BACKEND_URL"] + "/api/v1/providers"
    huge = {"name": "x" * (1100 * 1024), "provider_type": "derm"}
    assert clinic.backend.post(api, json=huge).status_code == 413
