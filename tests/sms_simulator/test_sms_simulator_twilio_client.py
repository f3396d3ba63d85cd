"""The real twilio 9 client talks to the simulator end to end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sms_simulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CLINIC_NUMBER, PATIENT, RunningSimulator
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client


class SimulatorHttpClient(TwilioHttpClient):
    """Rewrites https://api.twilio.com to the simulator, as TWILIO_API_BASE_URL does."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(
            method, url.replace("https://api.twilio.com", self.base_url, 1), *args, **kwargs
        )


def client_for(simulator: RunningSimulator, token: str = AUTH_TOKEN) -> Client:
    return Client(ACCOUNT_SID, token, http_client=SimulatorHttpClient(simulator.url))


def test_create_fetch_and_list(simulator: RunningSimulator) -> None:
    client = client_for(simulator)
    created = client.messages.create(
        to=PATIENT, from_=CLINIC_NUMBER, body="A slot opened. Reply YES."
    )
    assert created.sid.startswith("SM")
    assert created.status == "queued"
    assert created.to == PATIENT
    assert created.date_created is not None

    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.body == "A slot opened. Reply YES."
    assert fetched.account_sid == ACCOUNT_SID

    for index in range(3):
        client.messages.create(to=PATIENT, from_=CLINIC_NUMBER, body=f"more {index}")
    # page_size 2 makes the client follow next_page_uri through the simulator.
    listed = client.messages.list(to=PATIENT, page_size=2)
    assert len(listed) == 4
    assert listed[-1].sid == created.sid


def test_wrong_token_raises_20003(simulator: RunningSimulator) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client_for(simulator, token="wrong").messages.create(
            to=PATIENT, from_=CLINIC_NUMBER, body="hi"
        )
    assert raised.value.status == 401
    assert raised.value.code == 20003


def test_injected_unsubscribe_raises_21610(simulator: RunningSimulator) -> None:
    httpx.post(simulator.url + "/simulator/faults", json={"to": PATIENT, "kind": "unsubscribed"})
    with pytest.raises(TwilioRestException) as raised:
        client_for(simulator).messages.create(to=PATIENT, from_=CLINIC_NUMBER, body="hi")
    assert raised.value.code == 21610
