"""The patient page: every entry (the active one with its score breakdown), the offers made with
their slot, and the SMS conversation read from the assistant's tracker store."""

from __future__ import annotations

import json

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
from tests.review.tracker_rows import EVENTS_DDL


def _event(
    conn: sa.Connection, sender: str, kind: str, at: float, text: str, intent: str = ""
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data)"
            " VALUES (:sender, :kind, :at, :intent, :data)"
        ),
        {
            "sender": sender,
            "kind": kind,
            "at": at,
            "intent": intent or None,
            "data": json.dumps({"event": kind, "text": text}),
        },
    )


def test_the_patient_page_shows_entries_offers_and_the_conversation(
    app: Sanic,  # noqa: F811
    clean_db: Engine,
) -> None:
    derm = provider(app, "derm")
    patient = call(
        app,
        "post",
        "/api/v1/patients",
        STAFF,
        json={"phone": PHONES[0], "display_name": "Ana", "preferred_language": "en"},
    ).json["id"]
    entry = call(
        app,
        "post",
        "/api/v1/waitlist",
        STAFF,
        json={"patient_id": patient, "provider_type": "derm", "urgent": True},
    ).json["id"]
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json
    send_due_texts(app)
    declined = call(
        app,
        "post",
        "/internal/v1/replies/decline",
        ACTIONS,
        json={"phone": PHONES[0], "message_id": "SM1"},
    )
    assert declined.status == 200

    page = call(app, "get", f"/api/v1/patients/{patient}/history", STAFF)
    assert page.status == 200
    body = page.json
    assert body["patient"]["display_name"] == "Ana"
    [shown] = body["entries"]
    assert shown["id"] == entry and shown["status"] == "active"
    assert shown["score_parts"]["urgent"] > 0
    assert shown["score"] == sum(shown["score_parts"].values())
    [offer] = body["offers"]
    assert offer["cancellation_id"] == slot["id"]
    assert (offer["state"], offer["provider_name"], offer["location"]) == (
        "declined",
        "Dr. derm",
        "Main",
    )
    assert offer["slot_start"] == "2026-12-03T10:00:00-05:00"  # in the clinic's time zone
    # before the assistant has ever run there is no tracker store: the page says so
    assert body["transcript"] == {"available": False, "texts": []}

    try:
        with clean_db.begin() as conn:
            conn.exec_driver_sql(EVENTS_DDL)
            _event(conn, PHONES[0], "user", 1000.0, "EXTERNAL: offer", "EXTERNAL_offer")
            _event(conn, PHONES[0], "bot", 1001.0, "A Thursday 10:00 AM slot is open. Want it?")
            _event(conn, PHONES[0], "user", 1060.0, "no thanks", "decline")
            _event(conn, PHONES[1], "user", 1061.0, "someone else's text", "accept")
            _event(conn, PHONES[0], "bot", 1062.0, "No problem, you stay on the waitlist.")
        texts = call(app, "get", f"/api/v1/patients/{patient}/history", STAFF).json["transcript"]
    finally:
        with clean_db.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS events"))
    assert texts["available"] is True
    assert [(t["direction"], t["text"]) for t in texts["texts"]] == [
        ("out", "A Thursday 10:00 AM slot is open. Want it?"),
        ("in", "no thanks"),
        ("out", "No problem, you stay on the waitlist."),
    ]
    assert texts["texts"][1]["intent"] == "decline"
    assert texts["texts"][0]["at"] == "1970-01-01T00:16:41+00:00"


def test_an_unknown_patient_has_no_page(app: Sanic) -> None:  # noqa: F811
    missing = call(app, "get", "/api/v1/patients/999/history", STAFF)
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
