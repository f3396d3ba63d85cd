"""MessageSid dedup on the backend's PostgreSQL table `inbound_messages`."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text
from twilio_sms_testkit import (
    PUBLIC_BASE_URL,
    FakeAgent,
    FakeTwilio,
    inbound_params,
    make_settings,
    serve_channel,
    sign,
)

from channels.twilio_sms import PostgresInboundDedupStore, TwilioSmsInput, normalise_database_url

WEBHOOK_URL_PATH = "/webhooks/twilio/webhook"


def _stored_sids(database_url: str) -> list:
    engine = create_engine(normalise_database_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT message_sid FROM inbound_messages")).scalars().all()
    engine.dispose()
    return list(rows)


def test_normalise_database_url() -> None:
    assert (
        normalise_database_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg2://u:p@h:5432/d"
    )
    assert normalise_database_url("postgresql+psycopg://u@h/d?sslmode=require") == (
        "postgresql+psycopg2://u@h/d?sslmode=require"
    )
    assert normalise_database_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    with pytest.raises(ValueError) as raised:
        normalise_database_url("mysql://user:secret@h/d")
    assert "secret" not in str(raised.value)


def test_postgres_store_claims_once_and_releases(postgres_url: str) -> None:
    # The backend's own URL style (psycopg 3) must work here too.
    store = PostgresInboundDedupStore(
        postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        assert store.claim("SM" + "a" * 32) is True
        assert store.claim("SM" + "a" * 32) is False
        store.release("SM" + "a" * 32)
        assert store.claim("SM" + "a" * 32) is True
    finally:
        store.dispose()


@pytest.mark.asyncio
async def test_duplicate_message_sid_reaches_rasa_once(
    fake_twilio: FakeTwilio, postgres_url: str
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    params = inbound_params(Body="yes")
    signature = sign(PUBLIC_BASE_URL + WEBHOOK_URL_PATH, params)
    async with serve_channel(channel, agent) as base_url:
        async with httpx.AsyncClient() as client:
            answers = [
                await client.post(
                    base_url + WEBHOOK_URL_PATH,
                    data=params,
                    headers={"X-Twilio-Signature": signature},
                )
                for _ in range(3)
            ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert len(agent.messages) == 1
    assert _stored_sids(postgres_url) == [params["MessageSid"]]
    channel.dedup_store.dispose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_failed_processing_deletes_the_row(
    fake_twilio: FakeTwilio, postgres_url: str
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.failures_left = 1
    params = inbound_params()
    signature = sign(PUBLIC_BASE_URL + WEBHOOK_URL_PATH, params)
    async with serve_channel(channel, agent) as base_url:
        async with httpx.AsyncClient() as client:
            first = await client.post(
                base_url + WEBHOOK_URL_PATH, data=params, headers={"X-Twilio-Signature": signature}
            )
            assert first.status_code == 500
            assert _stored_sids(postgres_url) == []
            retry = await client.post(
                base_url + WEBHOOK_URL_PATH, data=params, headers={"X-Twilio-Signature": signature}
            )
    assert retry.status_code == 200
    assert len(agent.messages) == 2
    assert _stored_sids(postgres_url) == [params["MessageSid"]]
    channel.dedup_store.dispose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_unreachable_database_fails_open(fake_twilio: FakeTwilio) -> None:
    # Port 1 on loopback refuses connections at once.
    channel = TwilioSmsInput(
        make_settings(fake_twilio, database_url="postgresql://postgres@127.0.0.1:1/none")
    )
    agent = FakeAgent()
    params = inbound_params()
    signature = sign(PUBLIC_BASE_URL + WEBHOOK_URL_PATH, params)
    async with serve_channel(channel, agent) as base_url:
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                base_url + WEBHOOK_URL_PATH, data=params, headers={"X-Twilio-Signature": signature}
            )
    assert answer.status_code == 200
    assert len(agent.messages) == 1
