"""The inbound inbox (PostgreSQL table `inbound_messages`, or memory): stored once, run in arrival
order per phone, leased, retried with backoff, finished."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from twilio_sms_testkit import (
    PATIENT_NUMBER,
    FakeAgent,
    FakeTwilio,
    inbound_params,
    inbox_rows,
    make_settings,
    post_inbound,
    run_sql,
    serve_channel,
)

from channels import inbox as inbox_module
from channels.inbox import InboundText, Inbox, MemoryInbox, PostgresInbox, retry_delay
from channels.twilio_sms import TwilioSmsInput, normalise_database_url

OTHER_NUMBER = "+15557654321"
THIRD_NUMBER = "+15550001111"


def sid(label: str) -> str:
    return "SM" + label.rjust(32, "0")


def text(label: str, phone: str = PATIENT_NUMBER, body: str | None = None) -> InboundText:
    return InboundText(sid(label), phone, body if body is not None else f"text {label}")


@dataclass
class InboxUnderTest:
    """One inbox implementation, with a way to see (and age) its rows that the Protocol lacks."""

    inbox: Inbox
    # Another server's view of the same store: a second engine for PostgreSQL, the same object in
    # memory (a memory inbox is never shared between processes).
    other: Inbox
    row: Callable[[str], dict[str, Any]]
    age: Callable[[str, timedelta], None]


def _postgres(database_url: str) -> Iterator[InboxUnderTest]:
    # The backend's own URL style (psycopg 3) must work here too.
    url = normalise_database_url(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    first, second = PostgresInbox(url), PostgresInbox(url)

    def row(message_sid: str) -> dict[str, Any]:
        return inbox_rows(database_url)[message_sid]

    def age(message_sid: str, by: timedelta) -> None:
        run_sql(
            database_url,
            "UPDATE inbound_messages SET received_at = received_at - make_interval(secs => :s)"
            " WHERE message_sid = :sid",
            s=by.total_seconds(),
            sid=message_sid,
        )

    try:
        yield InboxUnderTest(first, second, row, age)
    finally:
        first.dispose()
        second.dispose()


def _memory() -> InboxUnderTest:
    inbox = MemoryInbox()

    # the memory inbox has no query API: tests read its rows directly
    def row(message_sid: str) -> dict[str, Any]:
        stored = inbox._rows[message_sid]
        return {
            "status": stored.status,
            "body": stored.text.body,
            "attempts": stored.text.attempts,
            "next_attempt_at": stored.next_attempt_at,
            "lease_until": stored.lease_until,
            "phone": stored.text.phone,
        }

    def age(message_sid: str, by: timedelta) -> None:
        stored = inbox._rows[message_sid]
        received = stored.text.received_at or datetime.now(timezone.utc)
        stored.text = replace(stored.text, received_at=received - by)

    return InboxUnderTest(inbox, inbox, row, age)


@pytest.fixture(params=["postgres", "memory"])
def under_test(request: pytest.FixtureRequest) -> Iterator[InboxUnderTest]:
    if request.param == "memory":
        yield _memory()
        return
    yield from _postgres(request.getfixturevalue("postgres_url"))


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


def test_retry_delays_grow_then_stay() -> None:
    assert [retry_delay(n).total_seconds() for n in (0, 1, 2, 3, 4, 5, 50)] == [
        5,
        5,
        10,
        20,
        30,
        30,
        30,
    ]


def test_a_duplicate_message_sid_is_refused(under_test: InboxUnderTest) -> None:
    inbox = under_test.inbox
    assert inbox.receive(text("1", body="YES")) is True
    assert inbox.receive(text("1", body="NO")) is False
    assert under_test.other.receive(text("1", body="NO")) is False

    taken = inbox.take_next(PATIENT_NUMBER)
    assert taken is not None
    assert (taken.message_sid, taken.body, taken.attempts) == (sid("1"), "YES", 1)
    inbox.finish(sid("1"))
    # still refused once done: Twilio may redeliver long after the turn
    assert inbox.receive(text("1", body="YES")) is False
    assert inbox.take_next(PATIENT_NUMBER) is None


def test_take_next_returns_only_the_head_of_the_phone_queue(under_test: InboxUnderTest) -> None:
    inbox = under_test.inbox
    for label, phone in (("1", PATIENT_NUMBER), ("2", PATIENT_NUMBER), ("3", OTHER_NUMBER)):
        assert inbox.receive(text(label, phone))

    head = inbox.take_next(PATIENT_NUMBER)
    assert head is not None and head.message_sid == sid("1")
    assert under_test.row(sid("1"))["status"] == "processing"
    # the head is leased: neither this server nor another gets the text behind it
    assert inbox.take_next(PATIENT_NUMBER) is None
    assert under_test.other.take_next(PATIENT_NUMBER) is None
    assert under_test.row(sid("2"))["status"] == "pending"
    assert under_test.row(sid("2"))["attempts"] == 0
    # another phone's queue is not held up
    other = under_test.other.take_next(OTHER_NUMBER)
    assert other is not None and other.message_sid == sid("3")

    inbox.finish(sid("1"))
    second = under_test.other.take_next(PATIENT_NUMBER)
    assert second is not None and (second.message_sid, second.body) == (sid("2"), "text 2")
    assert inbox.take_next(PATIENT_NUMBER) is None


def test_a_lease_that_ran_out_is_taken_over(
    under_test: InboxUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "LEASE", timedelta(seconds=1))
    inbox = under_test.inbox
    inbox.receive(text("1"))
    inbox.receive(text("2"))
    first = inbox.take_next(PATIENT_NUMBER)
    assert first is not None and first.attempts == 1
    assert under_test.other.take_next(PATIENT_NUMBER) is None
    assert under_test.other.phones_due() == []

    time.sleep(1.2)  # the server holding it died mid-turn

    assert under_test.other.phones_due() == [PATIENT_NUMBER]
    again = under_test.other.take_next(PATIENT_NUMBER)
    assert again is not None
    assert (again.message_sid, again.body, again.attempts) == (sid("1"), "text 1", 2)
    assert inbox.take_next(PATIENT_NUMBER) is None


def test_retry_later_sets_a_backoff(under_test: InboxUnderTest) -> None:
    inbox = under_test.inbox
    inbox.receive(text("1"))
    inbox.receive(text("2"))
    taken = inbox.take_next(PATIENT_NUMBER)
    assert taken is not None

    before = datetime.now(timezone.utc)
    assert inbox.retry_later(sid("1"), "an action failed") is True
    row = under_test.row(sid("1"))
    assert row["status"] == "pending"
    assert row["lease_until"] is None
    assert row["body"] == "text 1"
    wait = (row["next_attempt_at"] - before).total_seconds()
    assert 4 <= wait <= 6
    # not due yet, and the text behind it waits too
    assert inbox.phones_due() == []
    assert inbox.take_next(PATIENT_NUMBER) is None
    assert under_test.other.take_next(PATIENT_NUMBER) is None


def test_backoff_grows_with_each_attempt(
    under_test: InboxUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "RETRY_DELAYS", (1, 4, 4, 4))
    inbox = under_test.inbox
    inbox.receive(text("1"))
    assert inbox.take_next(PATIENT_NUMBER) is not None
    assert inbox.retry_later(sid("1"), "the backend was unavailable")
    assert inbox.take_next(PATIENT_NUMBER) is None

    time.sleep(1.2)

    assert inbox.phones_due() == [PATIENT_NUMBER]
    again = under_test.other.take_next(PATIENT_NUMBER)
    assert again is not None and again.attempts == 2
    before = datetime.now(timezone.utc)
    assert inbox.retry_later(sid("1"), "the backend was unavailable")
    wait = (under_test.row(sid("1"))["next_attempt_at"] - before).total_seconds()
    assert 3 <= wait <= 5


def test_a_text_is_given_up_after_a_day(under_test: InboxUnderTest) -> None:
    inbox = under_test.inbox
    inbox.receive(text("1"))
    inbox.receive(text("2"))
    assert inbox.take_next(PATIENT_NUMBER) is not None
    under_test.age(sid("1"), timedelta(hours=25))

    assert inbox.retry_later(sid("1"), "the backend was unavailable") is False
    row = under_test.row(sid("1"))
    assert row["status"] == "done"
    assert not row["body"]  # a given-up text keeps no body either
    # the texts behind it are no longer held up
    second = inbox.take_next(PATIENT_NUMBER)
    assert second is not None and second.message_sid == sid("2")


def test_finish_clears_the_body(under_test: InboxUnderTest) -> None:
    inbox = under_test.inbox
    inbox.receive(text("1", body="my date of birth is 1 May"))
    assert inbox.take_next(PATIENT_NUMBER) is not None
    inbox.finish(sid("1"))
    row = under_test.row(sid("1"))
    assert row["status"] == "done"
    assert not row["body"]
    assert row["lease_until"] is None
    assert inbox.phones_due() == []
    assert inbox.take_next(PATIENT_NUMBER) is None


def test_finish_clears_the_error_in_postgres(postgres_url: str) -> None:
    inbox = PostgresInbox(normalise_database_url(postgres_url))
    try:
        inbox.receive(text("1"))
        inbox.take_next(PATIENT_NUMBER)
        inbox.retry_later(sid("1"), "x" * 500)
        assert inbox_rows(postgres_url)[sid("1")]["last_error"] == "x" * 200  # capped
        run_sql(postgres_url, "UPDATE inbound_messages SET next_attempt_at = now()")
        assert inbox.take_next(PATIENT_NUMBER) is not None
        inbox.finish(sid("1"))
        row = inbox_rows(postgres_url)[sid("1")]
        assert (row["status"], row["body"], row["last_error"]) == ("done", None, None)
        assert row["done_at"] is not None and row["attempts"] == 2
    finally:
        inbox.dispose()


def test_phones_due(under_test: InboxUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "LEASE", timedelta(seconds=1))
    inbox = under_test.inbox
    leased_phone, waiting_phone, done_phone = OTHER_NUMBER, THIRD_NUMBER, "+15550002222"
    inbox.receive(text("1", PATIENT_NUMBER))  # new: due at once
    inbox.receive(text("2", leased_phone))
    assert inbox.take_next(leased_phone) is not None
    inbox.receive(text("3", waiting_phone))
    assert inbox.take_next(waiting_phone) is not None
    assert inbox.retry_later(sid("3"), "the backend was unavailable")
    inbox.receive(text("4", done_phone))
    assert inbox.take_next(done_phone) is not None
    inbox.finish(sid("4"))
    inbox.receive(text("5", PATIENT_NUMBER))  # a second text of a due phone: one entry
    # texts behind a leased or backing-off head are new, yet their phones cannot advance
    inbox.receive(text("6", leased_phone))
    inbox.receive(text("7", waiting_phone))

    assert inbox.phones_due() == [PATIENT_NUMBER]
    assert under_test.other.phones_due(limit=1) == [PATIENT_NUMBER]

    time.sleep(1.2)  # the lease on the leased phone's text ran out

    assert sorted(inbox.phones_due()) == sorted([PATIENT_NUMBER, leased_phone])
    assert len(inbox.phones_due(limit=1)) == 1


def _take_at_the_barrier(
    server: Inbox,
    phone: str,
    barrier: threading.Barrier,
    results: list[InboundText | None],
    index: int,
    errors: list[BaseException],
) -> None:
    try:
        barrier.wait(timeout=5)
        results[index] = server.take_next(phone)
    except BaseException as error:  # reported by the main thread
        errors.append(error)


def test_two_servers_racing_never_both_get_a_text(under_test: InboxUnderTest) -> None:
    """Two servers (two PostgresInbox engines; two threads on one MemoryInbox) take the same
    phone's queue at the same instant, 20 times: one gets its head, the other nothing."""
    servers = [under_test.inbox, under_test.other]
    for round_number in range(20):
        phone = f"+1555300{round_number:04d}"
        for position in range(2):
            assert under_test.inbox.receive(text(f"{round_number}-{position}", phone))
        barrier = threading.Barrier(len(servers))
        results: list[InboundText | None] = [None] * len(servers)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=_take_at_the_barrier,
                args=(servers[index], phone, barrier, results, index, errors),
            )
            for index in range(len(servers))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert errors == []
        taken = [result for result in results if result is not None]
        assert len(taken) == 1, f"round {round_number}: {results}"
        assert taken[0].message_sid == sid(f"{round_number}-0")
        assert taken[0].attempts == 1
        assert under_test.row(sid(f"{round_number}-1"))["status"] == "pending"


# ---------------------------------------------------------------- through the webhook


@pytest.mark.asyncio
async def test_duplicate_message_sid_reaches_rasa_once(
    fake_twilio: FakeTwilio, postgres_url: str
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.reply = "Great, see you Tuesday."
    params = inbound_params(Body="yes")
    async with serve_channel(channel, agent) as base_url:
        answers = [await post_inbound(base_url, params) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert len(agent.messages) == 1
    assert fake_twilio.bodies() == ["Great, see you Tuesday."]
    rows = inbox_rows(postgres_url)
    assert list(rows) == [params["MessageSid"]]
    row = rows[params["MessageSid"]]
    assert (row["phone"], row["status"], row["body"], row["attempts"], row["num_media"]) == (
        PATIENT_NUMBER,
        "done",
        None,
        1,
        0,
    )
    channel.inbox.dispose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_turn_that_raised_is_kept_and_a_redelivery_adds_nothing(
    fake_twilio: FakeTwilio, postgres_url: str
) -> None:
    channel = TwilioSmsInput(make_settings(fake_twilio, database_url=postgres_url))
    agent = FakeAgent()
    agent.failures_left = 1
    params = inbound_params(Body="yes")
    async with serve_channel(channel, agent) as base_url:
        first = await post_inbound(base_url, params)
        row = inbox_rows(postgres_url)[params["MessageSid"]]
        redelivery = await post_inbound(base_url, params)
    assert (first.status_code, redelivery.status_code) == (200, 200)
    assert len(agent.messages) == 1
    assert (row["status"], row["body"], row["attempts"]) == ("pending", "yes", 1)
    assert row["last_error"] == "turn raised RuntimeError"
    channel.inbox.dispose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_unreachable_database_fails_open(fake_twilio: FakeTwilio) -> None:
    # Port 1 on loopback refuses connections at once.
    channel = TwilioSmsInput(
        make_settings(fake_twilio, database_url="postgresql://postgres@127.0.0.1:1/none")
    )
    agent = FakeAgent()
    agent.reply = "Great, see you Tuesday."
    async with serve_channel(channel, agent) as base_url:
        answer = await post_inbound(base_url, inbound_params())
    assert answer.status_code == 200
    assert len(agent.messages) == 1
    assert fake_twilio.bodies() == ["Great, see you Tuesday."]
