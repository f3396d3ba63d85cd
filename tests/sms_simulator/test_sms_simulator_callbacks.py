"""Signed status callbacks in order, and fault injection."""

from __future__ import annotations

import time

import httpx
import pytest
from sms_simulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CLINIC_NUMBER,
    OTHER_PATIENT,
    PATIENT,
    Receiver,
    RunningSimulator,
    send,
)
from twilio.request_validator import RequestValidator

STATUS_PATH = "/webhooks/twilio/status"


def callbacks_for(receiver: Receiver, sid: str, count: int) -> list:
    return receiver.wait_for(count, lambda request: request.form.get("MessageSid") == sid)


def wait_for_status(
    simulator: RunningSimulator, sid: str, status: str, timeout: float = 5.0
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = {
            message["sid"]: message
            for message in httpx.get(simulator.url + "/simulator/messages").json()
        }
        if messages[sid]["status"] == status:
            return messages[sid]
        time.sleep(0.02)
    raise AssertionError(f"{sid} never reached {status}")


def add_fault(simulator: RunningSimulator, **fault: object) -> httpx.Response:
    return httpx.post(simulator.url + "/simulator/faults", json=fault)


def test_callbacks_are_signed_and_in_order(simulator: RunningSimulator, receiver: Receiver) -> None:
    # The query string is part of what Twilio signs.
    callback_url = receiver.url + STATUS_PATH + "?clinic=main"
    sid = send(simulator, StatusCallback=callback_url).json()["sid"]

    callbacks = callbacks_for(receiver, sid, 3)
    assert [callback.form["MessageStatus"] for callback in callbacks] == [
        "queued",
        "sent",
        "delivered",
    ]
    validator = RequestValidator(AUTH_TOKEN)
    for callback in callbacks:
        assert callback.path == STATUS_PATH + "?clinic=main"
        assert callback.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert validator.validate(
            callback_url, callback.form, callback.headers["X-Twilio-Signature"]
        )
        assert not RequestValidator("other-token").validate(
            callback_url, callback.form, callback.headers["X-Twilio-Signature"]
        )
        form = callback.form
        assert form["SmsStatus"] == form["MessageStatus"]
        assert form["SmsSid"] == sid
        assert (form["AccountSid"], form["From"], form["To"], form["ApiVersion"]) == (
            ACCOUNT_SID,
            CLINIC_NUMBER,
            PATIENT,
            "2010-04-01",
        )
        assert "ErrorCode" not in form
    assert wait_for_status(simulator, sid, "delivered")["error_code"] is None


def test_messaging_service_messages_get_a_sender(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    service = "MG" + "1" * 32
    created = send(
        simulator, From=None, MessagingServiceSid=service, StatusCallback=receiver.url + STATUS_PATH
    )
    assert created.status_code == 201
    assert created.json()["from"] is None
    callbacks = callbacks_for(receiver, created.json()["sid"], 3)
    assert all(callback.form["MessagingServiceSid"] == service for callback in callbacks)
    assert callbacks[-1].form["From"] == CLINIC_NUMBER


def test_no_callback_without_status_callback(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    sid = send(simulator).json()["sid"]
    wait_for_status(simulator, sid, "delivered")
    assert receiver.received() == []


def test_unreachable_callback_url_is_not_fatal(simulator: RunningSimulator) -> None:
    sid = send(simulator, StatusCallback="http://127.0.0.1:9/status").json()["sid"]
    assert wait_for_status(simulator, sid, "delivered")["status"] == "delivered"
    assert send(simulator).status_code == 201


def test_callback_endpoint_errors_are_not_fatal(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    receiver.answers[STATUS_PATH] = (500, "text/plain", "boom")
    sid = send(simulator, StatusCallback=receiver.url + STATUS_PATH).json()["sid"]
    assert len(callbacks_for(receiver, sid, 3)) == 3


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [("undelivered", ["queued", "sent", "undelivered"]), ("failed", ["queued", "failed"])],
)
def test_delivery_faults_end_with_error_30003(
    simulator: RunningSimulator, receiver: Receiver, kind: str, statuses: list[str]
) -> None:
    assert add_fault(simulator, to=PATIENT, kind=kind).status_code == 201
    created = send(simulator, StatusCallback=receiver.url + STATUS_PATH)
    assert created.status_code == 201  # accepted, fails later as on Twilio
    sid = created.json()["sid"]
    callbacks = callbacks_for(receiver, sid, len(statuses))
    assert [callback.form["MessageStatus"] for callback in callbacks] == statuses
    assert callbacks[-1].form["ErrorCode"] == "30003"
    final = wait_for_status(simulator, sid, statuses[-1])
    assert final["error_code"] == 30003
    # The fault was used up: the next send is delivered.
    next_sid = send(simulator, StatusCallback=receiver.url + STATUS_PATH).json()["sid"]
    assert callbacks_for(receiver, next_sid, 3)[-1].form["MessageStatus"] == "delivered"


def test_http_500_fault_for_the_next_n_sends(simulator: RunningSimulator) -> None:
    add_fault(simulator, to=PATIENT, kind="http_500", count=2)
    answers = [send(simulator) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [500, 500, 201]
    assert answers[0].json() == {
        "code": 20500,
        "message": "An internal server error has occurred",
        "more_info": "https://www.twilio.com/docs/errors/20500",
        "status": 500,
    }


def test_unsubscribed_fault_answers_21610(simulator: RunningSimulator) -> None:
    add_fault(simulator, to=PATIENT, kind="unsubscribed")
    other = send(simulator, To=OTHER_PATIENT)
    refused = send(simulator)
    assert other.status_code == 201
    assert refused.status_code == 400
    assert refused.json()["code"] == 21610
    assert refused.json()["message"] == "Attempt to send to unsubscribed recipient"
    assert [
        message["to"] for message in httpx.get(simulator.url + "/simulator/messages").json()
    ] == [OTHER_PATIENT]


def test_fault_without_number_hits_any_recipient(simulator: RunningSimulator) -> None:
    add_fault(simulator, kind="http_500")
    assert send(simulator, To=OTHER_PATIENT).status_code == 500
    assert send(simulator, To=OTHER_PATIENT).status_code == 201


def test_fault_validation_listing_and_reset(simulator: RunningSimulator) -> None:
    assert add_fault(simulator, kind="explode").status_code == 400
    assert add_fault(simulator, kind="failed", to="555").status_code == 400
    assert add_fault(simulator, kind="failed", count=0).status_code == 400
    add_fault(simulator, kind="failed", to=PATIENT, count=3, error_code=30007)
    assert httpx.get(simulator.url + "/simulator/faults").json() == [
        {
            "kind": "failed",
            "to": PATIENT,
            "remaining": 3,
            "error_code": 30007,
            "until": None,
            "delay_seconds": 10.0,
        }
    ]
    send(simulator)
    assert httpx.post(simulator.url + "/simulator/reset").status_code == 200
    assert httpx.get(simulator.url + "/simulator/faults").json() == []
    assert httpx.get(simulator.url + "/simulator/messages").json() == []
    assert send(simulator).status_code == 201


def test_an_outage_lasts_its_seconds_whatever_the_count(simulator: RunningSimulator) -> None:
    add_fault(simulator, kind="http_500", seconds=1)
    assert [send(simulator).status_code for _ in range(5)] == [500] * 5
    time.sleep(1.1)
    assert send(simulator).status_code == 201


@pytest.mark.parametrize(("kind", "status", "code"), [("http_429", 429, 20429), ("invalid", 400, 21211)])
def test_rate_limit_and_invalid_number(
    simulator: RunningSimulator, kind: str, status: int, code: int
) -> None:
    add_fault(simulator, kind=kind)
    refused = send(simulator)
    assert (refused.status_code, refused.json()["code"]) == (status, code)
    assert httpx.get(simulator.url + "/simulator/messages").json() == []


def test_a_slow_twilio_has_the_message_before_it_answers(simulator: RunningSimulator) -> None:
    add_fault(simulator, kind="slow", delay_seconds=1.5)
    with pytest.raises(httpx.ReadTimeout):
        send(simulator, timeout=0.5)
    # the client gave up, but the text exists: a retry must find it, not send it again
    messages = httpx.get(simulator.url + "/simulator/messages").json()
    assert [m["to"] for m in messages] == [PATIENT]


def test_duplicate_and_out_of_order_callbacks(
    simulator: RunningSimulator, receiver: Receiver
) -> None:
    callback_url = receiver.url + STATUS_PATH
    add_fault(simulator, kind="duplicate_callbacks")
    twice = send(simulator, StatusCallback=callback_url).json()["sid"]
    statuses = [c.form["MessageStatus"] for c in callbacks_for(receiver, twice, 6)]
    assert statuses == ["queued", "queued", "sent", "sent", "delivered", "delivered"]
    add_fault(simulator, kind="out_of_order_callbacks")
    reordered = send(simulator, StatusCallback=callback_url).json()["sid"]
    statuses = [c.form["MessageStatus"] for c in callbacks_for(receiver, reordered, 3)]
    assert statuses == ["delivered", "sent", "queued"]
    replay = httpx.post(
        simulator.url + f"/simulator/messages/{reordered}/replay_callbacks", json={"order": "same"}
    )
    assert replay.json() == {"replayed": 3}
    statuses = [c.form["MessageStatus"] for c in callbacks_for(receiver, reordered, 6)]
    assert statuses[3:] == ["queued", "sent", "delivered"]
