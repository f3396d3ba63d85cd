"""Every answer of the reply API, in every state the tests reach, matches contracts/reply_api.json
(the same file the actions' fake backend loads), and the language a patient writes in is kept."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.backend import builders
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.service_layer import dispatch, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

CONTRACT = json.loads(
    (Path(__file__).resolve().parents[3] / "contracts" / "reply_api.json").read_text()
)
P0, P1, P2 = builders.PHONES[:3]
STRANGER = "+12025559999"


def check(call: str, answer: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(answer, CONTRACT["answer_schema"])
    assert answer["outcome"] in CONTRACT["calls"][call]["outcomes"], (call, answer["outcome"])
    return answer


@pytest.fixture
def offered(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, messenger: RecordingMessenger
) -> list[int]:
    prov = builders.provider(uow, clock.now())
    ids = builders.waitlisted(uow, clock.now(), settings, 4)
    builders.cancellation(uow, clock.now(), settings, prov)
    dispatch.dispatch_due(uow, messenger, clock, settings)
    return ids


def test_every_answer_matches_the_contract(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, offered: list[int]
) -> None:
    now = clock.now()
    seen: set[tuple[str, str]] = set()

    def call(name: str, answer: dict[str, Any]) -> None:
        seen.add((name, check(name, answer)["outcome"]))

    call("offers/current", replies.current_offer(uow, settings, now, P0))
    call("offers/current", replies.current_offer(uow, settings, now, STRANGER))
    call("handoff", replies.handoff(uow, settings, now, P0, "SM-h1", "counter_proposal"))
    call("accept", replies.accept(uow, settings, now, P0, "SM-a1"))
    call("accept", replies.accept(uow, settings, now, P1, "SM-a2"))
    call("accept", replies.accept(uow, settings, now, STRANGER, "SM-a3"))
    call("decline", replies.decline(uow, settings, now, P2, "SM-d1"))
    call("defer", replies.defer(uow, settings, now, P2, "SM-f1", date(2026, 12, 14)))
    call(
        "availability",
        replies.update_availability(uow, settings, now, P2, "SM-v1", [0, 2], "morning", None),
    )
    call("leave", replies.leave(uow, settings, now, P2, "SM-l1"))
    call("leave", replies.leave(uow, settings, now, P2, "SM-l2"))
    call("opt_out", replies.opt_out(uow, settings, now, P1, "SM-o1"))
    call("opt_in", replies.opt_in(uow, settings, now, P1, "SM-i1"))
    call("handoff", replies.handoff(uow, settings, now, builders.PHONES[3], "SM-w", "wrong_number"))
    call("opt_in", replies.opt_in(uow, settings, now, builders.PHONES[3], "SM-i2"))
    call("handoff", replies.handoff(uow, settings, now, P0, "SM-b", "bereavement"))
    # every call of the contract was exercised, and most of its outcomes
    assert {name for name, _ in seen} == set(CONTRACT["calls"])
    assert len(seen) >= 14


def test_a_counter_proposal_answer_names_the_offer(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, offered: list[int]
) -> None:
    answer = replies.handoff(uow, settings, clock.now(), P0, "SM-c", "counter_proposal")
    assert answer["outcome"] == "handoff_recorded"
    assert answer["offer"] is not None and answer["offer"]["state"] == "pending"
    assert answer["offer"]["slot_date"] == "Thu Dec 3"


def test_the_language_a_patient_writes_in_becomes_theirs(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, offered: list[int]
) -> None:
    answer = replies.accept(uow, settings, clock.now(), P0, "SM-es", language="es")
    assert answer["patient"]["language"] == "es"
    assert answer["offer"]["slot_date"] == "jue 3 dic"  # the answer is already in Spanish
    assert staff.get_patient(uow, offered[0])["preferred_language"] == "es"
    with uow:
        kinds = [e["kind"] for e in uow.events.list("patient_language_changed", 10, 0)[0]]
    assert kinds == ["patient_language_changed"]
    # a repeated delivery changes nothing more
    replies.accept(uow, settings, clock.now(), P0, "SM-es", language="en")
    assert staff.get_patient(uow, offered[0])["preferred_language"] == "es"


def test_a_bereavement_silences_the_number_until_staff_fix_it(
    uow: UnitOfWork, clock: FakeClock, settings: Settings, offered: list[int]
) -> None:
    replies.handoff(uow, settings, clock.now(), P0, "SM-rip", "bereavement")
    patient = staff.get_patient(uow, offered[0])
    assert patient["opted_out"] is True and patient["wrong_number"] is True
    assert replies.opt_in(uow, settings, clock.now(), P0, "SM-start")["outcome"] == "wrong_number"
    with uow:
        events, _ = uow.events.list("handoff_requested", 10, 0)
    assert events[0]["data"] == {"reason": "bereavement"}
    clock.advance(minutes=1)
    prov = builders.provider(uow, clock.now(), name="Dr. Two")
    second = builders.cancellation(uow, clock.now(), settings, prov, starts_in=timedelta(days=3))
    assert offered[0] not in builders.states(uow, second)
