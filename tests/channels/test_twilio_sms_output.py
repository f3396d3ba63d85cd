"""The output channel: what goes to Twilio's REST API, and errors that must raise."""

from __future__ import annotations

import base64
import logging

import pytest
from twilio_sms_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CLINIC_NUMBER,
    PATIENT_NUMBER,
    PUBLIC_BASE_URL,
    FakeTwilio,
    make_settings,
)

from channels.twilio_sms import (
    RewritingAsyncTwilioHttpClient,
    TwilioSendError,
    TwilioSmsInput,
    TwilioSmsOutput,
)

MESSAGING_SERVICE_SID = "MG" + "2" * 32


@pytest.mark.asyncio
async def test_text_is_one_sms_with_the_right_form_fields(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    output = channel.get_output_channel()
    assert isinstance(output, TwilioSmsOutput)
    assert output.name() == "twilio"

    await output.send_response(
        PATIENT_NUMBER, {"text": "A slot opened: Tue 3:30 PM.\n\nReply YES to take it."}
    )

    assert len(fake_twilio.requests) == 1
    request = fake_twilio.requests[0]
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["authorization"] == expected_auth
    assert request["form"] == {
        "To": [PATIENT_NUMBER],
        "From": [CLINIC_NUMBER],
        "Body": ["A slot opened: Tue 3:30 PM.\n\nReply YES to take it."],
        "StatusCallback": [PUBLIC_BASE_URL + "/webhooks/twilio/status"],
    }
    await channel.sender.close()


@pytest.mark.asyncio
async def test_messaging_service_replaces_the_from_number(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(
        make_settings(fake_twilio, messaging_service_sid=MESSAGING_SERVICE_SID)
    )
    await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "hello")
    form = fake_twilio.requests[0]["form"]
    assert form["MessagingServiceSid"] == [MESSAGING_SERVICE_SID]
    assert "From" not in form
    await channel.sender.close()


@pytest.mark.asyncio
async def test_no_status_callback_without_public_base_url(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, public_base_url=None))
    await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "hello")
    assert "StatusCallback" not in fake_twilio.requests[0]["form"]
    await channel.sender.close()


@pytest.mark.asyncio
async def test_buttons_stay_in_the_same_sms(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    await channel.get_output_channel().send_response(
        PATIENT_NUMBER,
        {
            "text": "Take the slot?",
            "buttons": [{"title": "YES", "payload": "/accept"}, {"title": "NO"}],
        },
    )
    assert [request["form"]["Body"] for request in fake_twilio.requests] == [
        ["Take the slot?\n1: YES\n2: NO"]
    ]
    await channel.sender.close()


@pytest.mark.asyncio
async def test_image_and_custom_json(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    output = channel.get_output_channel()
    await output.send_response(PATIENT_NUMBER, {"image": "https://example.org/map.png"})
    await output.send_response(
        PATIENT_NUMBER, {"custom": {"body": "See map", "media_url": "https://example.org/m.png"}}
    )
    first, second = (request["form"] for request in fake_twilio.requests)
    assert first["MediaUrl"] == ["https://example.org/map.png"] and "Body" not in first
    assert second["Body"] == ["See map"] and second["MediaUrl"] == ["https://example.org/m.png"]
    await channel.sender.close()


@pytest.mark.asyncio
async def test_over_long_text_is_split_only_at_twilios_limit(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    text = ("word " * 400).strip()  # 1,999 characters
    await channel.get_output_channel().send_text_message(PATIENT_NUMBER, text)
    bodies = [request["form"]["Body"][0] for request in fake_twilio.requests]
    assert len(bodies) == 2
    assert all(len(body) <= 1600 for body in bodies)
    assert " ".join(bodies) == text
    await channel.sender.close()


@pytest.mark.asyncio
async def test_twilio_error_raises_with_masked_details(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = TwilioSmsInput(make_settings(fake_twilio))
    fake_twilio.fail_next(400, 21610, f"Attempt to send to unsubscribed recipient {PATIENT_NUMBER}")

    with pytest.raises(TwilioSendError) as raised:
        await channel.get_output_channel().send_text_message(
            PATIENT_NUMBER, "Your slot is Tue 3:30 PM"
        )

    assert str(raised.value).startswith("twilio-send-error kind=permanent code=21610: ")
    assert (raised.value.permanent, raised.value.code) == (True, 21610)
    assert PATIENT_NUMBER not in str(raised.value)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "+1******4567" in logged
    assert PATIENT_NUMBER not in logged
    assert "Tue 3:30" not in logged
    await channel.sender.close()


@pytest.mark.asyncio
async def test_server_error_and_unreachable_twilio_raise(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    fake_twilio.fail_next(500, 20500, "Internal Server Error")
    with pytest.raises(TwilioSendError) as server_error:
        await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "hi")
    await channel.sender.close()
    assert str(server_error.value).startswith("twilio-send-error kind=transient code=20500: ")
    assert server_error.value.permanent is False

    await fake_twilio.stop()
    with pytest.raises(TwilioSendError) as unreachable:
        await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "hi")
    await channel.sender.close()
    assert str(unreachable.value).startswith("twilio-send-error kind=transient: ")
    assert unreachable.value.code is None


@pytest.mark.asyncio
async def test_a_slow_twilio_is_a_transient_error(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, send_timeout=1.0))
    fake_twilio.hang_next(5.0)
    with pytest.raises(TwilioSendError) as raised:
        await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "hi")
    await channel.sender.close()
    assert str(raised.value).startswith("twilio-send-error kind=transient: ")


@pytest.mark.asyncio
async def test_non_e164_recipient_raises(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    with pytest.raises(TwilioSendError) as raised:
        await channel.get_output_channel().send_text_message("default", "hi")
    assert raised.value.permanent is True
    assert fake_twilio.requests == []


@pytest.mark.asyncio
async def test_one_http_session_serves_every_message(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio))
    await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "one")
    session = channel.sender.http_client.session
    await channel.get_output_channel().send_text_message(PATIENT_NUMBER, "two")
    assert session is not None and channel.sender.http_client.session is session
    assert len(fake_twilio.requests) == 2
    await channel.sender.close()


def test_base_url_rewrite() -> None:
    client = RewritingAsyncTwilioHttpClient("http://127.0.0.1:8088/")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert client.rewrite_url(url) == "http://127.0.0.1:8088/2010-04-01/Accounts/AC1/Messages.json"
    assert RewritingAsyncTwilioHttpClient(None).rewrite_url(url) == url
