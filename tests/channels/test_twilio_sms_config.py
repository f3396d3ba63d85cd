"""Shared helpers (masking, E.164, the signature check) and loading the channel from
credentials.yml as `rasa run` does."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from rasa.core.run import create_http_input_channels
from rasa.shared.exceptions import RasaException
from twilio_sms_testkit import (
    AUTH_TOKEN,
    PROJECT_ROOT,
    PUBLIC_BASE_URL,
    WEBHOOK_PATH,
    inbound_params,
    sign,
)

from channels.inbox import MemoryInbox, PostgresInbox
from channels.send_ledger import MemorySendLedger, PostgresSendLedger
from channels.twilio_sms import (
    TwilioSmsInput,
    TwilioSmsSettings,
    is_e164,
    mask_phone,
    mask_phones_in_text,
)
from sms_common import phones
from sms_common.twilio_signature import FormParams, signature_is_valid, signed_url

SIGNED_URL = PUBLIC_BASE_URL + WEBHOOK_PATH


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+15551234567", "+1******4567"),
        ("+447700900123", "+4*******0123"),
        ("+1234567", "+1**4567"),
        ("15551234567", "1******4567"),
        ("+12345", "+*****"),
        ("", "<none>"),
        (None, "<none>"),
        ("default", "***"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_channel_reexports_the_shared_phone_helpers() -> None:
    # one implementation for every process: the channel must not carry its own copy
    assert (is_e164, mask_phone, mask_phones_in_text) == (
        phones.is_e164,
        phones.mask_phone,
        phones.mask_phones_in_text,
    )


def test_mask_phones_in_text() -> None:
    text = "The 'To' number +15551234567 is not a valid phone number."
    assert mask_phones_in_text(text) == "The 'To' number +1******4567 is not a valid phone number."


@pytest.mark.parametrize("phone", ["+15551234567", "+4915112345678", "+1234567"])
def test_e164_accepts(phone: str) -> None:
    assert is_e164(phone)


@pytest.mark.parametrize(
    "phone", ["5551234567", "+0555123456", "+123456", "+1234567890123456", " +15551234567", None]
)
def test_e164_rejects(phone: str) -> None:
    assert not is_e164(phone)


def test_the_shared_signature_check_covers_the_query_string() -> None:
    params = inbound_params(Body="")  # blank fields are signed too
    form = FormParams.parse(urlencode(params).encode())
    url = signed_url(PUBLIC_BASE_URL + "/", WEBHOOK_PATH, "clinic=main&lang=es")
    assert url == SIGNED_URL + "?clinic=main&lang=es"
    signature = sign(url, params)
    assert signature_is_valid(AUTH_TOKEN, url, form, signature)
    assert not signature_is_valid(AUTH_TOKEN, SIGNED_URL, form, signature)
    assert not signature_is_valid(AUTH_TOKEN, SIGNED_URL + "?clinic=other&lang=es", form, signature)
    assert not signature_is_valid("", url, form, signature)
    assert not signature_is_valid(AUTH_TOKEN, url, form, None)


def test_credentials_yml_loads_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "3" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://clinic.example.org/")
    monkeypatch.setenv("TWILIO_API_BASE_URL", "http://127.0.0.1:8088")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TWILIO_MESSAGING_SERVICE_SID", raising=False)

    channels = create_http_input_channels(None, str(PROJECT_ROOT / "credentials.yml"))

    twilio = [channel for channel in channels if isinstance(channel, TwilioSmsInput)]
    assert len(twilio) == 1
    channel = twilio[0]
    assert channel.name() == "twilio" and channel.url_prefix() == "twilio"
    assert channel.settings.account_sid == "AC" + "3" * 32
    assert channel.settings.from_number == "+15005550006"
    assert (
        channel.settings.status_callback_url == "https://clinic.example.org/webhooks/twilio/status"
    )
    assert channel.sender.http_client.api_base_url == "http://127.0.0.1:8088"
    assert isinstance(channel.inbox, MemoryInbox)
    assert isinstance(channel.sender.ledger, MemorySendLedger)
    # no unsigned REST channel: it would let anyone speak as any patient
    assert [type(channel).name() for channel in channels] == ["twilio"]


def test_database_url_selects_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/waitlist")
    channel = TwilioSmsInput.from_credentials(
        {"account_sid": "AC" + "3" * 32, "auth_token": "t", "twilio_number": "+15005550006"}
    )
    assert isinstance(channel, TwilioSmsInput)
    assert isinstance(channel.inbox, PostgresInbox)
    assert isinstance(channel.sender.ledger, PostgresSendLedger)
    channel.inbox.dispose()
    channel.sender.ledger.dispose()


def test_given_stores_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    inbox, ledger = MemoryInbox(), MemorySendLedger()
    channel = TwilioSmsInput(
        TwilioSmsSettings(account_sid="AC" + "3" * 32, auth_token="t", from_number="+15005550006"),
        inbox=inbox,
        ledger=ledger,
    )
    assert channel.inbox is inbox
    assert channel.sender.ledger is ledger


def test_missing_credentials_fail_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RasaException):
        TwilioSmsInput.from_credentials({"account_sid": "AC" + "3" * 32, "auth_token": ""})
    with pytest.raises(RasaException):
        TwilioSmsInput(TwilioSmsSettings(account_sid="AC" + "3" * 32, auth_token="t"))
