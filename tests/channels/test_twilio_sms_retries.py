"""Turns that could not be applied (an action failed, the backend was down, a reply could not
leave, the turn raised) stay in the inbox and run again, in arrival order per phone."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from twilio_sms_testkit import (
    ACTION_FAILED,
    BACKEND_DOWN,
    BACKEND_DOWN_TEXT,
    FAILED_ACTION_LOG,
    PATIENT_NUMBER,
    FakeAgent,
    FakeTwilio,
    inbound_params,
    inbox_rows,
    make_settings,
    post_inbound,
    run_sql,
    serve_channel,
    wait_for,
)

from channels import inbox as inbox_module
from channels import twilio_sms
from channels.inbox import InboundText, PostgresInbox
from channels.twilio_sms import TwilioSmsInput, normalise_database_url

pytestmark = pytest.mark.asyncio

OTHER_NUMBER = "+15557654321"


@pytest.fixture
def retries_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """No background retries: each test runs the retry rounds itself, so that it can look at the
    inbox between them."""
    monkeypatch.setattr(twilio_sms, "INBOX_POLL_SECONDS", 3600.0)


async def retry_round(channel: TwilioSmsInput, agent: FakeAgent, database_url: str) -> None:
    """The backoff has passed; one round of the channel's retry loop (retry_forever) runs."""
    run_sql(
        database_url,
        "UPDATE inbound_messages SET next_attempt_at = clock_timestamp() - interval '1 second'"
        " WHERE status = 'pending'",
    )
    for phone in await asyncio.to_thread(channel.inbox.phones_due):
        await channel.drain(phone, agent.handle_message)


def status_of(database_url: str) -> dict[str, tuple[str, int]]:
    return {sid: (row["status"], row["attempts"]) for sid, row in inbox_rows(database_url).items()}


async def test_a_turn_whose_action_failed_runs_again_and_its_reply_is_sent(
    fake_twilio: FakeTwilio, postgres_url: str, retries_by_hand: None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.turns = [ACTION_FAILED]
    agent.reply = "It's yours: Tue 3:30 PM with Dr Lee."
    params = inbound_params(Body="YES")
    sid = params["MessageSid"]
    async with serve_channel(channel, agent) as base_url:
        answer = await post_inbound(base_url, params)
        assert answer.status_code == 200
        assert len(agent.messages) == 1
        assert fake_twilio.requests == []
        row = inbox_rows(postgres_url)[sid]
        assert (row["status"], row["attempts"], row["body"]) == ("pending", 1, "YES")
        assert "action failed" in row["last_error"]

        await retry_round(channel, agent, postgres_url)

        assert agent.texts() == ["YES", "YES"]
        again = agent.messages[1]
        assert (again.message_id, again.sender_id) == (sid, PATIENT_NUMBER)
        assert again.metadata["twilio"]["attempt"] == 2
        assert fake_twilio.bodies() == ["It's yours: Tue 3:30 PM with Dr Lee."]
        row = inbox_rows(postgres_url)[sid]
        assert (row["status"], row["attempts"], row["body"]) == ("done", 2, None)

        await retry_round(channel, agent, postgres_url)  # nothing left
    assert len(agent.messages) == 2
    assert len(fake_twilio.requests) == 1
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_the_failed_action_log_line_marks_only_its_own_turn(
    fake_twilio: FakeTwilio, postgres_url: str, retries_by_hand: None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    # the same line logged outside an inbound turn (by a trigger_intent, say) marks nothing
    logging.getLogger("rasa.core.processor").error(FAILED_ACTION_LOG.format("action_send_offer"))
    agent = FakeAgent()
    agent.reply = "Noted."
    params = inbound_params(Body="YES")
    async with serve_channel(channel, agent) as base_url:
        answer = await post_inbound(base_url, params)
        await retry_round(channel, agent, postgres_url)
    assert answer.status_code == 200
    assert len(agent.messages) == 1
    assert fake_twilio.bodies() == ["Noted."]
    assert status_of(postgres_url) == {params["MessageSid"]: ("done", 1)}
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_backend_down_is_said_once_then_the_real_answer_follows(
    fake_twilio: FakeTwilio, postgres_url: str, retries_by_hand: None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.turns = [BACKEND_DOWN, BACKEND_DOWN]
    agent.reply = "It's yours: Tue 3:30 PM."
    params = inbound_params(Body="YES")
    sid = params["MessageSid"]
    async with serve_channel(channel, agent) as base_url:
        assert (await post_inbound(base_url, params)).status_code == 200
        assert fake_twilio.bodies() == [BACKEND_DOWN_TEXT]
        assert status_of(postgres_url) == {sid: ("pending", 1)}
        assert inbox_rows(postgres_url)[sid]["last_error"] == "the backend was unavailable"

        await retry_round(channel, agent, postgres_url)  # still down: the patient was told already

        assert len(agent.messages) == 2
        assert fake_twilio.bodies() == [BACKEND_DOWN_TEXT]
        assert status_of(postgres_url) == {sid: ("pending", 2)}

        await retry_round(channel, agent, postgres_url)  # back up

    assert agent.texts() == ["YES", "YES", "YES"]
    assert fake_twilio.bodies() == [BACKEND_DOWN_TEXT, "It's yours: Tue 3:30 PM."]
    assert status_of(postgres_url) == {sid: ("done", 3)}
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_a_later_text_waits_until_the_earlier_one_succeeded(
    fake_twilio: FakeTwilio, postgres_url: str, retries_by_hand: None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.failures_left = 1
    agent.reply = "Noted."
    first = inbound_params(Body="YES")
    second = inbound_params(Body="STOP")
    elsewhere = inbound_params(Body="HELP", From=OTHER_NUMBER)
    async with serve_channel(channel, agent) as base_url:
        assert (await post_inbound(base_url, first)).status_code == 200
        assert (await post_inbound(base_url, second)).status_code == 200
        # STOP must not overtake YES: it waits, stored, without a turn
        assert agent.texts() == ["YES"]
        assert status_of(postgres_url) == {
            first["MessageSid"]: ("pending", 1),
            second["MessageSid"]: ("pending", 0),
        }
        assert inbox_rows(postgres_url)[second["MessageSid"]]["body"] == "STOP"
        # another patient is not held up
        assert (await post_inbound(base_url, elsewhere)).status_code == 200
        assert agent.texts() == ["YES", "HELP"]

        await retry_round(channel, agent, postgres_url)

    assert agent.texts() == ["YES", "HELP", "YES", "STOP"]
    assert [message.message_id for message in agent.messages[2:]] == [
        first["MessageSid"],
        second["MessageSid"],
    ]
    assert [request["form"]["To"] for request in fake_twilio.requests] == [
        [OTHER_NUMBER],
        [PATIENT_NUMBER],
        [PATIENT_NUMBER],
    ]
    assert status_of(postgres_url) == {
        first["MessageSid"]: ("done", 2),
        second["MessageSid"]: ("done", 1),
        elsewhere["MessageSid"]: ("done", 1),
    }
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_a_reply_that_could_not_leave_is_sent_by_the_retry(
    fake_twilio: FakeTwilio,
    postgres_url: str,
    retries_by_hand: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.reply = "Your offer details"
    fake_twilio.fail_next(500, 20500, "Internal Server Error")
    params = inbound_params()
    sid = params["MessageSid"]
    async with serve_channel(channel, agent) as base_url:
        assert (await post_inbound(base_url, params)).status_code == 200
        assert fake_twilio.messages == []
        assert status_of(postgres_url) == {sid: ("pending", 1)}
        assert inbox_rows(postgres_url)[sid]["last_error"] == "a reply could not be sent"
        # Twilio's redelivery of the same text adds no turn
        assert (await post_inbound(base_url, params)).status_code == 200
        assert len(agent.messages) == 1

        await retry_round(channel, agent, postgres_url)

    assert len(agent.messages) == 2
    assert [message["body"] for message in fake_twilio.messages] == ["Your offer details"]
    assert status_of(postgres_url) == {sid: ("done", 2)}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PATIENT_NUMBER not in logged and "offer details" not in logged
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_a_reply_twilio_refuses_for_good_is_not_retried(
    fake_twilio: FakeTwilio, postgres_url: str, retries_by_hand: None
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.reply = "Noted."
    fake_twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    params = inbound_params(Body="STOP")
    async with serve_channel(channel, agent) as base_url:
        assert (await post_inbound(base_url, params)).status_code == 200
        await retry_round(channel, agent, postgres_url)
    assert len(agent.messages) == 1
    assert len(fake_twilio.requests) == 1
    assert status_of(postgres_url) == {params["MessageSid"]: ("done", 1)}
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_the_retry_loop_runs_a_pending_text_without_a_new_webhook(
    fake_twilio: FakeTwilio, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_sms, "INBOX_POLL_SECONDS", 0.05)
    monkeypatch.setattr(inbox_module, "RETRY_DELAYS", (1, 1, 1, 1))
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.turns = [ACTION_FAILED]
    agent.reply = "It's yours."
    params = inbound_params(Body="YES")
    sid = params["MessageSid"]
    async with serve_channel(channel, agent) as base_url:
        assert (await post_inbound(base_url, params)).status_code == 200
        # backing off: the loop leaves it alone for now
        assert status_of(postgres_url) == {sid: ("pending", 1)}
        assert fake_twilio.requests == []

        await wait_for(lambda: len(fake_twilio.requests) == 1)

        assert agent.texts() == ["YES", "YES"]
        assert fake_twilio.bodies() == ["It's yours."]
        await wait_for(lambda: status_of(postgres_url) == {sid: ("done", 2)})
        await asyncio.sleep(0.3)  # a few more rounds: nothing runs twice
    assert len(agent.messages) == 2
    assert len(fake_twilio.requests) == 1
    channel.inbox.dispose()  # type: ignore[attr-defined]


async def test_the_retry_loop_takes_over_a_text_whose_server_died(
    fake_twilio: FakeTwilio, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_sms, "INBOX_POLL_SECONDS", 0.05)
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.reply = "It's yours."
    sid = inbound_params()["MessageSid"]
    # another server stored the text and leased it, then died mid-turn
    dead_server = PostgresInbox(normalise_database_url(postgres_url))
    monkeypatch.setattr(inbox_module, "LEASE", timedelta(milliseconds=300))
    dead_server.receive(InboundText(sid, PATIENT_NUMBER, "YES"))
    assert dead_server.take_next(PATIENT_NUMBER) is not None
    dead_server.dispose()
    async with serve_channel(channel, agent):  # no webhook: the retry loop finds it
        await wait_for(lambda: len(fake_twilio.requests) == 1)
        await wait_for(lambda: status_of(postgres_url) == {sid: ("done", 2)})
    assert agent.texts() == ["YES"]
    assert agent.messages[0].metadata["twilio"]["attempt"] == 2
    channel.inbox.dispose()  # type: ignore[attr-defined]
