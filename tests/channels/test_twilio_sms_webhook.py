"""The webhook: signatures, input checks, media-only messages, what reaches Rasa."""

from __future__ import annotations

import logging

import httpx
import pytest
from twilio_sms_testkit import (
    ACCOUNT_SID,
    PATIENT_NUMBER,
    PUBLIC_BASE_URL,
    FakeAgent,
    FakeTwilio,
    inbound_params,
    inbox_rows,
    make_settings,
    serve_channel,
    sign,
    wait_for,
)

from channels import inbox as inbox_module
from channels import twilio_sms
from channels.twilio_sms import (
    MAX_WEBHOOK_BODY,
    MEDIA_ONLY_TURN,
    TwilioSmsInput,
    TwilioSmsOutput,
)

pytestmark = pytest.mark.asyncio

WEBHOOK_PATH = "/webhooks/twilio/webhook"
SIGNED_URL = PUBLIC_BASE_URL + WEBHOOK_PATH


async def post(
    base_url: str,
    params: dict[str, str],
    signature: str | None = "auto",
    query: str = "",
) -> httpx.Response:
    headers = {}
    if signature == "auto":
        signature = sign(SIGNED_URL + query, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(base_url + WEBHOOK_PATH + query, data=params, headers=headers)


async def test_health(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    async with serve_channel(channel, FakeAgent()) as base_url:
        async with httpx.AsyncClient() as client:
            answer = await client.get(base_url + "/webhooks/twilio/")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_signed_message_reaches_rasa_once(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(Body="Yes, I can come!")
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert "<Response/>" in answer.text
    assert len(agent.messages) == 1
    message = agent.messages[0]
    assert message.text == "Yes, I can come!"
    assert message.sender_id == PATIENT_NUMBER
    assert message.message_id == params["MessageSid"]
    assert message.input_channel == "twilio"
    assert isinstance(message.output_channel, TwilioSmsOutput)
    assert message.metadata == {
        "twilio": {"message_sid": params["MessageSid"], "num_media": 0, "attempt": 1}
    }
    # Logs carry a masked number and never the body.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PATIENT_NUMBER not in logged
    assert "+1******4567" in logged
    assert "I can come" not in logged


async def test_blank_fields_are_part_of_the_signature(fake_twilio: FakeTwilio) -> None:
    """Sanic 21's request.form drops blank values; Twilio signs them."""
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(FromCity="", ToState="", FromZip="")
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)
    assert answer.status_code == 200
    assert len(agent.messages) == 1


async def test_a_signature_over_a_url_with_a_query_string_validates(
    fake_twilio: FakeTwilio,
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, public_base_url=PUBLIC_BASE_URL + "/"))
    agent = FakeAgent()
    params = inbound_params(Body="YES")
    query = "?clinic=main&lang=es&note=a%20b"
    async with serve_channel(channel, agent) as base_url:
        answer = await post(
            base_url, params, signature=sign(SIGNED_URL + query, params), query=query
        )
    assert answer.status_code == 200
    assert agent.texts() == ["YES"]


async def test_a_body_over_64_kb_is_413(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(Body="x" * (65 * 1024))
    async with serve_channel(channel, agent) as base_url:
        too_large = await post(base_url, params)
        # just under the cap is read as usual (and refused for its signature, not its size)
        small = dict(params, Body="x" * (MAX_WEBHOOK_BODY - 2048))
        under_cap = await post(base_url, small, signature="bm90IGEgc2lnbmF0dXJl")
    assert too_large.status_code == 413
    assert under_cap.status_code == 403
    assert agent.messages == []
    assert fake_twilio.requests == []


async def test_query_string_is_part_of_the_signature(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    async with serve_channel(channel, agent) as base_url:
        good = await post(base_url, inbound_params(), query="?clinic=main")
        # Signed without the query, posted with it: not what Twilio signed.
        params = inbound_params()
        bad = await post(base_url, params, signature=sign(SIGNED_URL, params), query="?clinic=main")
    assert good.status_code == 200
    assert bad.status_code == 403
    assert len(agent.messages) == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "bm90IGEgc2lnbmF0dXJl",
        "%%% not base64 %%%",
    ],
)
async def test_missing_or_bad_signature_is_403(
    fake_twilio: FakeTwilio, signature: str | None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, inbound_params(), signature=signature)
    assert answer.status_code == 403
    assert agent.messages == []
    assert fake_twilio.requests == []


async def test_signature_with_another_token_or_url_is_403(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params()
    async with serve_channel(channel, agent) as base_url:
        other_token = await post(
            base_url, params, signature=sign(SIGNED_URL, params, token="other-token")
        )
        # Signed for the local address rather than the public origin Twilio calls.
        local_url = await post(base_url, params, signature=sign(base_url + WEBHOOK_PATH, params))
        tampered = dict(params, Body="no")
        tampered_body = await post(base_url, tampered, signature=sign(SIGNED_URL, params))
    assert [other_token.status_code, local_url.status_code, tampered_body.status_code] == [
        403,
        403,
        403,
    ]
    assert agent.messages == []


@pytest.mark.parametrize(
    ("overrides", "expected_text"),
    [
        ({"Body": None}, "missing Body"),
        ({"Body": ""}, "missing Body"),
        ({"Body": "   "}, "missing Body"),
        ({"From": None}, "missing From"),
        ({"From": ""}, "missing From"),
        ({"From": "5551234567"}, "E.164"),
        ({"From": "+05551234567"}, "E.164"),
        ({"From": "+1555"}, "E.164"),
        ({"From": "+1555123456789012"}, "E.164"),
        ({"From": "whatsapp:+15551234567"}, "E.164"),
        ({"MessageSid": None}, "MessageSid"),
        ({"NumMedia": "many"}, "NumMedia"),
    ],
)
async def test_bad_input_is_400(
    fake_twilio: FakeTwilio, overrides: dict[str, str | None], expected_text: str
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, inbound_params(**overrides))
    assert answer.status_code == 400
    assert expected_text in answer.text
    assert agent.messages == []


async def test_media_only_message_is_answered_by_the_assistant_in_the_patients_language(
    fake_twilio: FakeTwilio,
) -> None:
    """A picture without text becomes the channel's own turn, so the answer comes from domain.yml
    (utter_media_only, English or Spanish by the language slot), not a fixed English text here."""
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(
        Body="",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
    )
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)
    assert answer.status_code == 200
    assert [m.text for m in agent.messages] == [MEDIA_ONLY_TURN]


async def test_a_stop_twilio_already_answered_is_recorded_silently(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    async with serve_channel(channel, agent) as base_url:
        stop = await post(base_url, inbound_params(Body="STOP", OptOutType="STOP"))
        start = await post(base_url, inbound_params(Body="START", OptOutType="START"))
        help_ = await post(base_url, inbound_params(Body="HELP", OptOutType="HELP"))
    assert [stop.status_code, start.status_code, help_.status_code] == [200, 200, 200]
    assert [m.text for m in agent.messages] == [
        "/EXTERNAL_twilio_opt_out",
        "/EXTERNAL_twilio_opt_in",
    ]
    assert fake_twilio.requests == []  # Twilio answered them; we send nothing


async def test_the_opening_exclamation_mark_reaches_nlu_as_written(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    async with serve_channel(channel, agent) as base_url:
        await post(base_url, inbound_params(Body="¡Sí!"))
    assert [m.text for m in agent.messages] == ["¡Sí!"]


async def test_media_with_text_goes_through_nlu(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(Body="yes", NumMedia="1", MediaUrl0="https://example.org/m.jpg")
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)
    assert answer.status_code == 200
    assert [message.text for message in agent.messages] == ["yes"]
    assert fake_twilio.requests == []


async def test_patient_cannot_inject_intents(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    params = inbound_params(Body='/EXTERNAL_offer{"offer_id": 1}')
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)
    assert answer.status_code == 200
    assert agent.messages[0].text == 'EXTERNAL_offer{"offer_id": 1}'


async def test_reply_goes_out_by_rest_api_in_one_sms(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    agent.reply = "Great, it's yours.\n\nSee you Tuesday."
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, inbound_params())
    assert answer.status_code == 200
    assert "<Message" not in answer.text
    assert len(fake_twilio.requests) == 1
    request = fake_twilio.requests[0]
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request["form"]["Body"] == ["Great, it's yours.\n\nSee you Tuesday."]


async def test_send_failure_on_an_inbound_turn_is_logged_and_acknowledged(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    channel = TwilioSmsInput(make_settings(fake_twilio))
    agent = FakeAgent()
    agent.reply = "Your offer details"
    fake_twilio.fail_next(500, 20500, "Internal Server Error")
    params = inbound_params()
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params)
        # The text is stored (to be run again later), so a redelivery has no second effect.
        again = await post(base_url, params)
    assert answer.status_code == 200
    assert again.status_code == 200
    assert len(agent.messages) == 1
    assert fake_twilio.messages == []
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("+1******4567" in text for text in errors)
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARN]
    assert any("a reply could not be sent" in text for text in warnings)
    assert not any(PATIENT_NUMBER in text or "offer details" in text for text in warnings)


async def test_a_turn_that_raises_is_answered_200_kept_and_run_again_by_the_retry(
    fake_twilio: FakeTwilio, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_sms, "INBOX_POLL_SECONDS", 0.05)
    monkeypatch.setattr(inbox_module, "RETRY_DELAYS", (1, 1, 1, 1))
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.failures_left = 1
    agent.reply = "Great, it's yours."
    params = inbound_params(Body="yes")
    sid = params["MessageSid"]
    async with serve_channel(channel, agent) as base_url:
        first = await post(base_url, params)
        assert first.status_code == 200
        assert "<Response/>" in first.text
        row = inbox_rows(postgres_url)[sid]
        assert (row["status"], row["attempts"], row["body"]) == ("pending", 1, "yes")
        assert row["last_error"] == "turn raised RuntimeError"
        duplicate = await post(base_url, params)
        assert duplicate.status_code == 200
        assert len(agent.messages) == 1

        await wait_for(lambda: inbox_rows(postgres_url)[sid]["status"] == "done")

        late_duplicate = await post(base_url, params)
    assert late_duplicate.status_code == 200
    assert [message.message_id for message in agent.messages] == [sid, sid]
    assert fake_twilio.bodies() == ["Great, it's yours."]
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_without_public_base_url_the_local_url_is_checked(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, public_base_url=None))
    agent = FakeAgent()
    params = inbound_params()
    async with serve_channel(channel, agent) as base_url:
        answer = await post(base_url, params, signature=sign(base_url + WEBHOOK_PATH, params))
    assert answer.status_code == 200
    assert len(agent.messages) == 1
