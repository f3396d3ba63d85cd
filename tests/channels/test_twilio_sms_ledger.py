"""The send ledger (PostgreSQL table `sms_sends`, or memory): a proactive text with a ref reaches
Twilio once, whatever the retries, and an attempt that died mid-send is reconciled with Twilio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from twilio_sms_testkit import (
    PATIENT_NUMBER,
    STATUS_CALLBACK_URL,
    FakeTwilio,
    ledger_rows,
    make_settings,
    run_sql,
)

from channels.send_ledger import (
    STALE_AFTER,
    LedgerEntry,
    MemorySendLedger,
    PostgresSendLedger,
    SendLedger,
    body_digest,
)
from channels.twilio_sms import (
    TwilioSendError,
    TwilioSmsOutput,
    TwilioSmsSender,
    normalise_database_url,
)

pytestmark = pytest.mark.asyncio

OFFER = "A slot opened: Tue 3:30 PM with Dr Lee. Reply YES to take it."
REF = "outbox-12"


@dataclass
class LedgerUnderTest:
    ledger: SendLedger
    # Backdates an attempt, as if it had died mid-send long enough ago to be in doubt.
    make_stale: Callable[[str], None]
    row: Callable[[str], dict[str, Any] | None]


def _postgres(database_url: str) -> Iterator[LedgerUnderTest]:
    ledger = PostgresSendLedger(normalise_database_url(database_url))
    ago = (STALE_AFTER + timedelta(seconds=30)).total_seconds()

    def make_stale(ref: str) -> None:
        run_sql(
            database_url,
            "UPDATE sms_sends SET created_at = created_at - make_interval(secs => :ago),"
            " updated_at = updated_at - make_interval(secs => :ago) WHERE ref = :ref",
            ago=ago,
            ref=ref,
        )

    def row(ref: str) -> dict[str, Any] | None:
        return ledger_rows(database_url).get(ref)

    try:
        yield LedgerUnderTest(ledger, make_stale, row)
    finally:
        ledger.dispose()


def _memory() -> LedgerUnderTest:
    ledger = MemorySendLedger()

    # the memory ledger has no query API: tests read and backdate its rows directly
    def make_stale(ref: str) -> None:
        entry = ledger._rows[ref]
        ago = STALE_AFTER + timedelta(seconds=30)
        ledger._rows[ref] = replace(
            entry, created_at=entry.created_at - ago, updated_at=entry.updated_at - ago
        )

    def row(ref: str) -> dict[str, Any] | None:
        entry: LedgerEntry | None = ledger._rows.get(ref)
        if entry is None:
            return None
        return {
            "status": entry.status,
            "message_sid": entry.message_sid,
            "error_code": entry.error_code,
        }

    return LedgerUnderTest(ledger, make_stale, row)


@pytest.fixture(params=["postgres", "memory"])
def under_test(request: pytest.FixtureRequest) -> Iterator[LedgerUnderTest]:
    if request.param == "memory":
        yield _memory()
        return
    yield from _postgres(request.getfixturevalue("postgres_url"))


def sender_for(fake: FakeTwilio, ledger: SendLedger, **settings: Any) -> TwilioSmsSender:
    return TwilioSmsSender(make_settings(fake, **settings), ledger)


async def test_a_ref_is_sent_once_across_calls(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    sids = [await sender.send(PATIENT_NUMBER, OFFER, ref=REF) for _ in range(3)]
    await sender.close()

    assert len(fake_twilio.requests) == 1
    assert len(set(sids)) == 1
    assert sids[0] == fake_twilio.messages[0]["sid"]
    row = under_test.row(REF)
    assert row is not None and (row["status"], row["message_sid"]) == ("sent", sids[0])


async def test_the_ledger_row_matches_the_backend_table(
    fake_twilio: FakeTwilio, postgres_url: str
) -> None:
    ledger = PostgresSendLedger(normalise_database_url(postgres_url))
    sender = sender_for(fake_twilio, ledger)
    sid = await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.close()
    ledger.dispose()
    row = ledger_rows(postgres_url)[REF]
    assert (row["phone"], row["body_sha256"], row["status"], row["message_sid"]) == (
        PATIENT_NUMBER,
        body_digest(OFFER),
        "sent",
        sid,
    )
    assert row["error_code"] is None and row["updated_at"] >= row["created_at"]


async def test_without_a_ref_every_call_sends(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    first = await sender.send(PATIENT_NUMBER, OFFER)
    second = await sender.send(PATIENT_NUMBER, OFFER)
    await sender.close()
    assert first != second
    assert len(fake_twilio.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, 20500), (503, 20503), (429, 20429), (401, 20003), (400, 21606)],
)
async def test_a_transient_twilio_error_lets_the_retry_send_once(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest, status: int, code: int
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    fake_twilio.fail_next(status, code, "Try again")

    with pytest.raises(TwilioSendError) as raised:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    assert raised.value.permanent is False
    assert str(raised.value).startswith(f"twilio-send-error kind=transient code={code}:")
    assert under_test.row(REF) is None  # forgotten: Twilio surely did not take it

    sid = await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    assert await sender.send(PATIENT_NUMBER, OFFER, ref=REF) == sid
    await sender.close()

    assert len(fake_twilio.requests) == 2  # the refused one, then the one that went out
    assert [message["sid"] for message in fake_twilio.messages] == [sid]


@pytest.mark.parametrize("code", [21211, 21610, 21614])
async def test_a_per_number_error_is_permanent_and_remembered(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest, code: int
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    fake_twilio.fail_next(400, code, f"The 'To' number {PATIENT_NUMBER} is not valid")

    with pytest.raises(TwilioSendError) as first:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    with pytest.raises(TwilioSendError) as again:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.close()

    assert str(first.value).startswith(f"twilio-send-error kind=permanent code={code}:")
    assert PATIENT_NUMBER not in str(first.value)
    assert (again.value.permanent, again.value.code) == (True, code)
    assert str(again.value).startswith(f"twilio-send-error kind=permanent code={code}:")
    assert len(fake_twilio.requests) == 1  # the second call never reached Twilio
    row = under_test.row(REF)
    assert row is not None and (row["status"], row["error_code"]) == ("failed", str(code))


async def test_an_attempt_in_doubt_whose_text_twilio_has_is_not_sent_again(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger, send_timeout=1.0)
    fake_twilio.hang_next(5.0)  # Twilio takes the text; its answer comes too late

    with pytest.raises(TwilioSendError) as timed_out:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    assert str(timed_out.value).startswith("twilio-send-error kind=transient:")
    row = under_test.row(REF)
    assert row is not None and row["status"] == "sending"  # in doubt
    taken_sid = fake_twilio.messages[0]["sid"]

    # a retry while that attempt may still be running waits
    with pytest.raises(TwilioSendError) as busy:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    assert busy.value.permanent is False
    assert fake_twilio.list_requests == []

    under_test.make_stale(REF)
    fake_twilio.add_message(PATIENT_NUMBER, "Another text to the same patient")
    sid = await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    assert sid == taken_sid
    assert len(fake_twilio.requests) == 1
    assert [query.get("To") for query in fake_twilio.list_requests] == [PATIENT_NUMBER]
    # no DateSent filter: a text Twilio has queued but not yet sent has no date_sent
    assert "DateSent>" not in fake_twilio.list_requests[0]
    row = under_test.row(REF)
    assert row is not None and (row["status"], row["message_sid"]) == ("sent", taken_sid)

    # recorded: later retries need neither Twilio's list nor a send
    assert await sender.send(PATIENT_NUMBER, OFFER, ref=REF) == taken_sid
    await sender.close()
    assert len(fake_twilio.list_requests) == 1
    assert len(fake_twilio.requests) == 1


async def test_an_attempt_in_doubt_whose_text_twilio_lacks_is_sent_once(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    # an attempt recorded itself, then died before Twilio took the text
    assert under_test.ledger.begin(REF, PATIENT_NUMBER, OFFER) is None
    under_test.make_stale(REF)
    fake_twilio.add_message(PATIENT_NUMBER, "Another text to the same patient")
    fake_twilio.add_message("+15557654321", OFFER)  # the same text to someone else
    sender = sender_for(fake_twilio, under_test.ledger)

    sid = await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    again = await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.close()

    assert again == sid
    assert len(fake_twilio.list_requests) == 1
    assert len(fake_twilio.requests) == 1
    assert fake_twilio.bodies() == [OFFER]
    assert fake_twilio.requests[0]["form"]["To"] == [PATIENT_NUMBER]
    row = under_test.row(REF)
    assert row is not None and (row["status"], row["message_sid"]) == ("sent", sid)


async def test_when_twilio_cannot_be_asked_nothing_is_sent(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    assert under_test.ledger.begin(REF, PATIENT_NUMBER, OFFER) is None
    under_test.make_stale(REF)
    sender = sender_for(fake_twilio, under_test.ledger)
    await fake_twilio.stop()

    with pytest.raises(TwilioSendError) as raised:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.close()

    assert raised.value.permanent is False
    assert fake_twilio.requests == []
    row = under_test.row(REF)
    assert row is not None and row["status"] == "sending"  # still in doubt for the next retry


async def test_the_status_callback_carries_the_ref(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.send(PATIENT_NUMBER, "A reply to the patient")
    await sender.close()
    callbacks = [request["form"]["StatusCallback"] for request in fake_twilio.requests]
    assert callbacks == [[f"{STATUS_CALLBACK_URL}?ref={REF}"], [STATUS_CALLBACK_URL]]


async def test_each_part_of_a_long_proactive_text_has_its_own_ref(
    fake_twilio: FakeTwilio, under_test: LedgerUnderTest
) -> None:
    sender = sender_for(fake_twilio, under_test.ledger)
    text = ("word " * 400).strip()  # two SMS
    for _ in range(2):  # the backend retried the whole trigger_intent
        await TwilioSmsOutput(sender, raise_on_error=True, ref=REF).send_text_message(
            PATIENT_NUMBER, text
        )
    await sender.close()
    assert len(fake_twilio.requests) == 2
    assert [request["form"]["StatusCallback"] for request in fake_twilio.requests] == [
        [f"{STATUS_CALLBACK_URL}?ref={REF}"],
        [f"{STATUS_CALLBACK_URL}?ref={REF}%232"],
    ]
    assert " ".join(fake_twilio.bodies()) == text


async def test_an_unreachable_ledger_sends_nothing(fake_twilio: FakeTwilio) -> None:
    # Port 1 on loopback refuses connections at once.
    ledger = PostgresSendLedger("postgresql+psycopg2://postgres@127.0.0.1:1/none")
    sender = sender_for(fake_twilio, ledger)
    with pytest.raises(TwilioSendError) as raised:
        await sender.send(PATIENT_NUMBER, OFFER, ref=REF)
    await sender.close()
    ledger.dispose()
    assert raised.value.permanent is False
    assert fake_twilio.requests == []
