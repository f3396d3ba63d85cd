"""GET /api/v1/board: what the front desk sees for each open slot."""

from __future__ import annotations

import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.builders import PHONES
from tests.backend.integration.test_api import (  # noqa: F401  (the app fixture)
    STAFF,
    app,
    call,
    send_due_texts,
)
from tests.backend.integration.test_why import THURSDAY, provider, waitlisted


def test_the_board_shows_each_seat_its_text_and_its_hold(app: Sanic, clean_db: Engine) -> None:  # noqa: F811
    derm = provider(app, "derm")
    for n in range(4):
        waitlisted(app, n, provider_type="derm")
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json

    queued = call(app, "get", "/api/v1/board", STAFF).json
    [shown] = queued["slots"]
    assert shown["id"] == slot["id"] and shown["provider"]["name"] == "Dr. derm"
    assert [(s["name"], s["state"], s["text"], s["seconds_left"]) for s in shown["seats"]] == [
        ("P0", "pending", "queued", None),
        ("P1", "pending", "queued", None),
        ("P2", "pending", "queued", None),
    ]
    assert shown["seats"][0]["phone"] == "+1******" + PHONES[0][-4:]
    assert shown["next"] == "next seat refills from 1 eligible patient"

    send_due_texts(app)
    with clean_db.begin() as conn:  # what Twilio's status callbacks would have said
        conn.execute(sa.text("UPDATE outbox SET delivery_status = 'delivered' WHERE id = 1"))
        conn.execute(sa.text("UPDATE outbox SET delivery_status = 'undelivered' WHERE id = 2"))
    app.ctx.backend.clock.advance(minutes=2)
    seats = call(app, "get", "/api/v1/board", STAFF).json["slots"][0]["seats"]
    assert [(s["name"], s["text"], s["seconds_left"]) for s in seats] == [
        ("P0", "delivered", 300),  # a 7-minute hold, 2 minutes gone
        ("P1", "failed", 300),
        ("P2", "sent", 300),
    ]
    assert "+1202" not in str(seats)  # no full phone number on the board

    # a closed slot leaves the board
    call(app, "post", f"/api/v1/cancellations/{slot['id']}/abort", STAFF)
    assert call(app, "get", "/api/v1/board", STAFF).json["slots"] == []
