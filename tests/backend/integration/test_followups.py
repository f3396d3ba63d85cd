"""The "booked, enter in schedule" queue: every fill until staff say it is in the practice's
schedule; overdue after 15 minutes; the click is audited under the user's name."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.builders import PHONES
from tests.backend.integration.test_api import (  # noqa: F401  (the app fixture)
    ACTIONS,
    STAFF,
    app,
    call,
    send_due_texts,
)
from tests.backend.integration.test_why import THURSDAY, provider


def test_a_fill_waits_in_the_queue_until_entered(app: Sanic, clean_db: Engine) -> None:  # noqa: F811
    derm = provider(app, "derm")
    patient = call(
        app,
        "post",
        "/api/v1/patients",
        STAFF,
        json={"phone": PHONES[0], "display_name": "Ana", "preferred_language": "en"},
    ).json["id"]
    call(
        app,
        "post",
        "/api/v1/waitlist",
        STAFF,
        json={
            "patient_id": patient,
            "provider_type": "derm",
            "current_appointment_at": "2027-01-20T09:00:00-05:00",
        },
    )
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json
    assert call(app, "get", "/api/v1/followups/booked", STAFF).json["items"] == []  # not filled yet
    send_due_texts(app)
    claimed = call(
        app,
        "post",
        "/internal/v1/replies/accept",
        ACTIONS,
        json={"phone": PHONES[0], "message_id": "SM1"},
    )
    assert claimed.json["outcome"] == "claimed"

    [item] = call(app, "get", "/api/v1/followups/booked", STAFF).json["items"]
    assert item["cancellation_id"] == slot["id"]
    assert (item["name"], item["phone"], item["provider"]) == ("Ana", PHONES[0], "Dr. derm")
    assert item["slot_start"] == "2026-12-03T15:00:00+00:00"
    assert item["old_appointment_at"] == "2027-01-20T14:00:00+00:00"
    assert item["overdue"] is False
    app.ctx.backend.clock.advance(minutes=15)
    assert call(app, "get", "/api/v1/followups/booked", STAFF).json["items"][0]["overdue"] is True

    url = f"/api/v1/followups/booked/{slot['id']}/entered"
    done = call(app, "post", url, STAFF)
    assert done.status == 200 and done.json["schedule_entered_by"] == "bootstrap-token"
    assert call(app, "post", url, STAFF).json == done.json  # a second click changes nothing
    assert call(app, "get", "/api/v1/followups/booked", STAFF).json["items"] == []
    with clean_db.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE kind = 'booking_entered_in_schedule'")
        ).scalar()
    assert audited == 1


def test_an_open_slot_cannot_be_marked_entered(app: Sanic) -> None:  # noqa: F811
    derm = provider(app, "derm")
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json
    answer = call(app, "post", f"/api/v1/followups/booked/{slot['id']}/entered", STAFF)
    assert answer.status == 409 and answer.json["field"] == "status"
    assert call(app, "post", "/api/v1/followups/booked/999/entered", STAFF).status == 404


def handoff(app: Sanic, n: int, reason: str, text: str) -> Any:  # noqa: F811
    body = {"phone": PHONES[n], "message_id": f"SM-h{n}", "reason": reason, "text": text}
    return call(app, "post", "/internal/v1/replies/handoff", ACTIONS, json=body)


def test_call_backs_come_emergencies_first_and_close_once(app: Sanic, clean_db: Engine) -> None:  # noqa: F811
    for n, name in enumerate(["Ana", "Luis"]):
        body = {"phone": PHONES[n], "display_name": name, "preferred_language": "en"}
        call(app, "post", "/api/v1/patients", STAFF, json=body)
    assert handoff(app, 0, "talk_to_person", "can someone call me").json["outcome"] == (
        "handoff_recorded"
    )
    app.ctx.backend.clock.advance(minutes=1)
    handoff(app, 1, "emergency", "my chest hurts")

    queue = call(app, "get", "/api/v1/followups/callbacks", STAFF).json["items"]
    assert [(c["name"], c["reason"], c["emergency"], c["last_message"]) for c in queue] == [
        ("Luis", "emergency", True, "my chest hurts"),
        ("Ana", "talk_to_person", False, "can someone call me"),
    ]
    assert queue[1]["phone"] == PHONES[0]

    url = f"/api/v1/followups/callbacks/{queue[0]['id']}/done"
    done = call(app, "post", url, STAFF, json={"note": "called, he is at the ER"})
    assert done.status == 200 and done.json["done_by"] == "bootstrap-token"
    again = call(app, "post", url, STAFF, json={"note": "another note"})
    assert again.json == done.json  # the first closing stands
    assert [
        c["name"] for c in call(app, "get", "/api/v1/followups/callbacks", STAFF).json["items"]
    ] == ["Ana"]
    with clean_db.connect() as conn:
        closed = conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE kind = 'callback_done'")
        ).scalar()
        provider_event = conn.execute(
            sa.text("SELECT id FROM audit_events WHERE kind = 'patient_created' LIMIT 1")
        ).scalar()
    assert closed == 1
    # only a call-back can be closed
    assert (
        call(app, "post", f"/api/v1/followups/callbacks/{provider_event}/done", STAFF).status == 404
    )
    assert call(app, "post", "/api/v1/followups/callbacks/99999/done", STAFF).status == 404
