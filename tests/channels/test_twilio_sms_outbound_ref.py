"""A proactive text started by the backend (`trigger_intent?...&ref=outbox-12`) carries its ref
to Twilio: in the StatusCallback URL, and through the send ledger."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, unquote

import httpx
import pytest
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio_sms_testkit import (
    PATIENT_NUMBER,
    STATUS_CALLBACK_URL,
    FakeAgent,
    FakeTwilio,
    inbound_params,
    make_settings,
    post_inbound,
    serve_channel,
)

from channels.twilio_sms import TwilioSmsInput

pytestmark = pytest.mark.asyncio

OFFER = "A slot opened: Tue 3:30 PM with Dr Lee. Reply YES to take it."
TRIGGER_PATH = f"/conversations/{quote(PATIENT_NUMBER, safe='')}/trigger_intent"


def rasa_routes(channel: TwilioSmsInput) -> Callable[[Sanic], None]:
    """Stand-ins for Rasa's own HTTP API: trigger_intent runs an action that texts the patient
    through the channel's output channel, as Rasa's does; another route does the same."""

    async def send_offer(request: Request, conversation_id: str) -> HTTPResponse:
        output = channel.get_output_channel()
        try:
            await output.send_text_message(unquote(conversation_id), OFFER)
        except Exception as error:  # Rasa answers 500 with the error's text
            return response.json({"message": str(error)}, status=500)
        return response.json({"ok": True})

    def add(app: Sanic) -> None:
        app.add_route(
            send_offer,
            "/conversations/<conversation_id:path>/trigger_intent",
            methods=["POST"],
            name="trigger_intent",
        )
        app.add_route(
            send_offer,
            "/conversations/<conversation_id:path>/execute",
            methods=["POST"],
            name="execute",
        )

    return add


def callbacks(fake: FakeTwilio) -> list[list[str]]:
    return [request["form"]["StatusCallback"] for request in fake.requests]


async def test_the_ref_reaches_twilio_in_the_status_callback(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    async with serve_channel(channel, FakeAgent(), rasa_routes(channel)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            answer = await client.post(
                TRIGGER_PATH,
                params={"output_channel": "twilio", "ref": "outbox-12"},
                json={"name": "EXTERNAL_offer"},
            )
    assert answer.status_code == 200
    assert fake_twilio.bodies() == [OFFER]
    assert callbacks(fake_twilio) == [[STATUS_CALLBACK_URL + "?ref=outbox-12"]]


async def test_a_retried_trigger_intent_texts_once(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    async with serve_channel(channel, FakeAgent(), rasa_routes(channel)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            answers = [
                await client.post(TRIGGER_PATH, params={"ref": "outbox-12"}, json={})
                for _ in range(3)
            ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert len(fake_twilio.requests) == 1


async def test_a_permanent_refusal_reaches_the_backend_and_is_remembered(
    fake_twilio: FakeTwilio,
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    fake_twilio.fail_next(400, 21211, f"The 'To' number {PATIENT_NUMBER} is not valid")
    async with serve_channel(channel, FakeAgent(), rasa_routes(channel)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            first = await client.post(TRIGGER_PATH, params={"ref": "outbox-12"}, json={})
            again = await client.post(TRIGGER_PATH, params={"ref": "outbox-12"}, json={})
    assert (first.status_code, again.status_code) == (500, 500)
    for answer in (first, again):
        assert "twilio-send-error kind=permanent code=21211" in answer.json()["message"]
        assert PATIENT_NUMBER not in answer.text
    assert len(fake_twilio.requests) == 1


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"ref": ""},
        {"ref": "outbox 12"},
        {"ref": "outbox-12&x=1"},
        {"ref": "outbox/12"},
        {"ref": "x" * 65},
        {"ref": "outbox-12\n"},
    ],
)
async def test_no_ref_or_a_bad_one_carries_none(
    fake_twilio: FakeTwilio, query: dict[str, str]
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    async with serve_channel(channel, FakeAgent(), rasa_routes(channel)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            answers = [await client.post(TRIGGER_PATH, params=query, json={}) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200]
    # without a valid ref nothing is deduplicated: each call texts
    assert callbacks(fake_twilio) == [[STATUS_CALLBACK_URL], [STATUS_CALLBACK_URL]]


async def test_a_ref_does_not_outlive_its_request(fake_twilio: FakeTwilio) -> None:
    # One keep-alive connection serves every request below, in one server task.
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    agent.reply = "Noted."
    async with serve_channel(channel, agent, rasa_routes(channel)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            with_ref = await client.post(TRIGGER_PATH, params={"ref": "outbox-12"}, json={})
            without = await client.post(TRIGGER_PATH, json={})
            other_route = await client.post(
                TRIGGER_PATH.replace("trigger_intent", "execute"),
                params={"ref": "outbox-13"},
                json={},
            )
        # an inbound turn's reply is no proactive text, whatever its URL says
        inbound = await post_inbound(base_url, inbound_params(), query="?ref=outbox-14")
    assert [a.status_code for a in (with_ref, without, other_route, inbound)] == [200] * 4
    assert callbacks(fake_twilio) == [
        [STATUS_CALLBACK_URL + "?ref=outbox-12"],
        [STATUS_CALLBACK_URL],
        [STATUS_CALLBACK_URL],
        [STATUS_CALLBACK_URL],
    ]
