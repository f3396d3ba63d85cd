"""The HTTP surface: auth, validation naming the field, 404s, shapes, and the Twilio status webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine
from twilio.request_validator import RequestValidator

from tests.backend.builders import PHONES, START
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.entrypoints.app import Backend, create_app
from waitlist.entrypoints.scheduler import Worker
from waitlist.service_layer import dispatch
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

STAFF = {"Authorization": "Bearer staff-secret"}
ACTIONS = {"Authorization": "Bearer actions-secret"}
TWILIO_TOKEN = "twilio-secret"
PUBLIC = "https://clinic.example.org"


def build_app(engine: Engine, worker: Worker | None = None) -> Sanic:
    """The backend app on the test database with a recording messenger and a fake clock."""
    Sanic.test_mode = True
    settings = Settings.from_env(
        {
            "STAFF_API_TOKEN": "staff-secret",
            "ACTIONS_API_TOKEN": "actions-secret",
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC,
        }
    )
    backend = Backend(
        settings,
        UnitOfWork.session_factory_for(engine),
        RecordingMessenger(),
        FakeClock(START),
        worker,
    )
    app = create_app(backend, name=f"test_backend_{id(backend)}")
    app.ctx.backend = backend
    return app


@pytest.fixture
def app(clean_db: Engine) -> Iterator[Sanic]:
    yield build_app(clean_db)


def send_due_texts(app: Sanic) -> RecordingMessenger:
    """What the scheduler does in production: hand the due texts to the messenger."""
    b: Backend = app.ctx.backend
    assert isinstance(b.messenger, RecordingMessenger)
    dispatch.dispatch_due(b.uow(), b.messenger, b.clock, b.settings)
    return b.messenger


def call(app: Sanic, method: str, path: str, headers: dict | None = None, **kw: Any) -> Any:
    _, response = getattr(app.test_client, method)(path, headers=headers or {}, **kw)
    return response


def setup_clinic(app: Sanic) -> dict[str, int]:
    provider = call(
        app,
        "post",
        "/api/v1/providers",
        STAFF,
        json={"name": "Dr. Lee", "provider_type": "dermatology"},
    ).json["id"]
    patient = call(
        app,
        "post",
        "/api/v1/patients",
        STAFF,
        json={"phone": PHONES[0], "display_name": "Ana", "preferred_language": "es"},
    ).json
    entry = call(
        app,
        "post",
        "/api/v1/waitlist",
        STAFF,
        json={
            "patient_id": patient["id"],
            "provider_type": "dermatology",
            "urgent": True,
            "days_of_week": ["thu"],
        },
    ).json
    return {"provider": provider, "patient": patient["id"], "entry": entry["id"]}


def test_staff_flow_fills_a_slot(app: Sanic) -> None:
    ids = setup_clinic(app)
    response = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": ids["provider"],
            "location": "Main Street",
            "slot_start": "2026-12-03T10:00:00-05:00",
            "slot_end": "2026-12-03T10:30:00-05:00",
        },
    )
    assert response.status == 201
    body = response.json
    assert body["status"] == "open"
    assert [(o["patient_id"], o["state"]) for o in body["offers"]] == [(ids["patient"], "pending")]
    send_due_texts(app)

    answer = call(
        app,
        "post",
        "/internal/v1/replies/accept",
        ACTIONS,
        json={"phone": PHONES[0], "message_id": "SM1"},
    )
    assert answer.status == 200 and answer.json["outcome"] == "claimed"
    assert answer.json["offer"]["slot_date"] == "jue 3 dic"

    view = call(app, "get", f"/api/v1/cancellations/{body['id']}", STAFF).json
    assert view["status"] == "filled" and view["filled_by_patient_id"] == ids["patient"]
    entry = call(app, "get", f"/api/v1/waitlist/{ids['entry']}", STAFF).json
    assert entry["status"] == "fulfilled"
    assert entry["score"] == 30 and entry["score_parts"]["urgent"] == 30
    assert call(app, "get", "/api/v1/cancellations", STAFF).json["items"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/patients", {"phone": "555-1234", "display_name": "Ana"}, "phone"),
        ("/api/v1/patients", {"phone": "+1555", "display_name": "Ana"}, "phone"),
        ("/api/v1/patients", {"phone": PHONES[1], "display_name": ""}, "display_name"),
        (
            "/api/v1/patients",
            {"phone": PHONES[1], "display_name": "A", "preferred_language": "fr"},
            "preferred_language",
        ),
        ("/api/v1/providers", {"name": "Dr. X"}, "provider_type"),
        ("/api/v1/waitlist", {"patient_id": "abc"}, "patient_id"),
        ("/api/v1/waitlist", {"patient_id": 1, "manual_boost": 41}, "manual_boost"),
        ("/api/v1/waitlist", {"patient_id": 1, "days_of_week": ["funday"]}, "days_of_week.0"),
        ("/api/v1/waitlist", {"patient_id": 1, "colour": "red"}, "colour"),
        (
            "/api/v1/cancellations",
            {
                "provider_id": 1,
                "location": "M",
                "slot_start": "2026-12-03T10:00:00",
                "slot_end": "2026-12-03T10:30:00Z",
            },
            "slot_start",
        ),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    app: Sanic, clean_db: Engine, path: str, body: dict, field: str
) -> None:
    response = call(app, "post", path, STAFF, json=body)
    assert response.status == 422
    assert response.json["field"] == field and field.split(".")[0] in response.json["error"]
    with clean_db.connect() as conn:
        counts = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM patients) + (SELECT count(*) FROM providers)"
                " + (SELECT count(*) FROM waitlist_entries) + (SELECT count(*) FROM cancellations)"
            )
        ).scalar_one()
    assert counts == 0


def test_malformed_json_is_400(app: Sanic) -> None:
    response = call(
        app,
        "post",
        "/api/v1/providers",
        STAFF,
        content="{not json",
    )
    assert response.status == 400 and "JSON" in response.json["error"]


def test_rule_violations(app: Sanic) -> None:
    ids = setup_clinic(app)
    past = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": ids["provider"],
            "location": "M",
            "slot_start": "2026-11-30T10:00:00-05:00",
            "slot_end": "2026-11-30T10:30:00-05:00",
        },
    )
    assert past.status == 422 and "past" in past.json["error"]
    backwards = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": ids["provider"],
            "location": "M",
            "slot_start": "2026-12-03T10:30:00-05:00",
            "slot_end": "2026-12-03T10:00:00-05:00",
        },
    )
    assert backwards.status == 422
    duplicate = call(
        app, "post", "/api/v1/patients", STAFF, json={"phone": PHONES[0], "display_name": "B"}
    )
    assert duplicate.status == 409 and duplicate.json["field"] == "phone"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/patients/999"),
        ("get", "/api/v1/waitlist/999"),
        ("get", "/api/v1/cancellations/999"),
        ("post", "/api/v1/cancellations/999/abort"),
        ("delete", "/api/v1/waitlist/999"),
    ],
)
def test_unknown_ids_are_404(app: Sanic, method: str, path: str) -> None:
    response = call(app, method, path, STAFF)
    assert response.status == 404 and "not found" in response.json["error"]
    # an id past PostgreSQL's integer range is just as unknown, never a 500
    beyond = path.replace("999", str(2**31))
    response = call(app, method, beyond, STAFF)
    assert response.status == 404, (beyond, response.status)
    huge = path.replace("999", "9" * 30)
    assert call(app, method, huge, STAFF).status == 404


def test_unknown_provider_in_cancellation_is_404(app: Sanic) -> None:
    response = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": 42,
            "location": "M",
            "slot_start": "2026-12-03T10:00:00-05:00",
            "slot_end": "2026-12-03T10:30:00-05:00",
        },
    )
    assert response.status == 404


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, ACTIONS, {"Authorization": "staff-secret"}]
)
def test_staff_api_needs_the_staff_token(app: Sanic, headers: dict) -> None:
    response = call(
        app, "post", "/api/v1/providers", headers, json={"name": "Dr. Lee", "provider_type": "x"}
    )
    assert response.status == 401


@pytest.mark.parametrize("headers", [{}, STAFF])
def test_reply_api_needs_the_actions_token(app: Sanic, headers: dict) -> None:
    response = call(
        app,
        "post",
        "/internal/v1/replies/accept",
        headers,
        json={"phone": PHONES[0], "message_id": "SM1"},
    )
    assert response.status == 401


def test_reply_api_validates_phone(app: Sanic) -> None:
    response = call(
        app,
        "post",
        "/internal/v1/replies/accept",
        ACTIONS,
        json={"phone": "12345", "message_id": "SM1"},
    )
    assert response.status == 422 and response.json["field"] == "phone"
    response = call(app, "get", "/internal/v1/offers/current?phone=nope", ACTIONS)
    assert response.status == 422


def test_boost_and_remove(app: Sanic) -> None:
    ids = setup_clinic(app)
    boosted = call(
        app, "post", f"/api/v1/waitlist/{ids['entry']}/boost", STAFF, json={"manual_boost": 12}
    ).json
    assert boosted["manual_boost"] == 12 and boosted["score"] == 42
    patched = call(
        app,
        "patch",
        f"/api/v1/waitlist/{ids['entry']}",
        STAFF,
        json={"not_before": "2026-12-10", "urgent": False},
    ).json
    assert (patched["not_before"], patched["urgent"], patched["score"]) == ("2026-12-10", False, 12)
    removed = call(app, "delete", f"/api/v1/waitlist/{ids['entry']}", STAFF).json
    assert removed["status"] == "removed"


def test_abort_and_list(app: Sanic) -> None:
    ids = setup_clinic(app)
    created = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": ids["provider"],
            "location": "Main Street",
            "slot_start": "2026-12-03T10:00:00-05:00",
            "slot_end": "2026-12-03T10:30:00-05:00",
        },
    ).json
    assert [c["id"] for c in call(app, "get", "/api/v1/cancellations", STAFF).json["items"]] == [
        created["id"]
    ]
    aborted = call(app, "post", f"/api/v1/cancellations/{created['id']}/abort", STAFF)
    assert aborted.status == 200 and aborted.json["status"] == "aborted"
    assert aborted.json["offers"][0]["state"] == "withdrawn"
    again = call(app, "post", f"/api/v1/cancellations/{created['id']}/abort", STAFF)
    assert again.status == 409


def _signed(params: dict[str, str], path: str = "/webhooks/twilio/status") -> dict[str, str]:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
    return {"X-Twilio-Signature": signature}


def test_status_callback_signature(app: Sanic) -> None:
    ids = setup_clinic(app)
    call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={
            "provider_id": ids["provider"],
            "location": "Main Street",
            "slot_start": "2026-12-03T10:00:00-05:00",
            "slot_end": "2026-12-03T10:30:00-05:00",
        },
    )
    ref = send_due_texts(app).sent[0].ref
    path = f"/webhooks/twilio/status?ref={ref}"
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "undelivered",
        "To": PHONES[0],
        "ErrorCode": "30003",
        "FromCity": "",  # Twilio signs blank fields too
    }
    forged = call(app, "post", path, {"X-Twilio-Signature": "bad"}, data=params)
    assert forged.status == 403
    unsigned = call(app, "post", path, {}, data=params)
    assert unsigned.status == 403
    other_ref = call(
        app, "post", "/webhooks/twilio/status?ref=outbox-999", _signed(params), data=params
    )
    assert other_ref.status == 403  # the query is signed too
    events = call(app, "get", "/api/v1/events?kind=sms_delivery_failed", STAFF).json["items"]
    assert events == []
    ok = call(app, "post", path, _signed(params, path), data=params)
    assert ok.status == 204
    events = call(app, "get", "/api/v1/events?kind=sms_delivery_failed", STAFF).json["items"]
    assert len(events) == 1


def test_openapi_is_served(app: Sanic) -> None:
    spec = call(app, "get", "/docs/openapi.json").json
    assert "/api/v1/cancellations" in spec["paths"]
    assert "/api/v1/waitlist/{entry_id}" in spec["paths"]
    assert "/api/v1/stats" in spec["paths"]
    # the assistant's reply API and Twilio's webhooks are no one else's business
    internal = [p for p in spec["paths"] if p.startswith(("/internal/", "/webhooks/"))]
    assert internal == []


SLOT = {
    "location": "Main",
    "slot_start": "2026-12-03T10:00:00-05:00",
    "slot_end": "2026-12-03T10:30:00-05:00",
}


def open_slots(app: Sanic) -> list[dict]:
    return call(app, "get", "/api/v1/cancellations?status=all", STAFF).json["items"]


def test_the_same_cancellation_twice_is_refused_with_the_first_ones_id(app: Sanic) -> None:
    ids = setup_clinic(app)
    body = {"provider_id": ids["provider"], **SLOT}
    first = call(app, "post", "/api/v1/cancellations", STAFF, json=body)
    assert first.status == 201
    again = call(app, "post", "/api/v1/cancellations", STAFF, json={**body, "location": "Main "})
    assert again.status == 409
    assert again.json["field"] == "slot_start"
    assert again.json["cancellation_id"] == first.json["id"]
    assert [c["id"] for c in open_slots(app)] == [first.json["id"]]
    # once aborted, the chair is free and the same slot may be entered again
    assert call(app, "post", f"/api/v1/cancellations/{first.json['id']}/abort", STAFF).status == 200
    assert call(app, "post", "/api/v1/cancellations", STAFF, json=body).status == 201


def test_an_idempotency_key_replays_the_first_answer(app: Sanic) -> None:
    ids = setup_clinic(app)
    body = {"provider_id": ids["provider"], **SLOT}
    key = {**STAFF, "Idempotency-Key": "slot-entry-7f3a"}
    first = call(app, "post", "/api/v1/cancellations", key, json=body)
    replay = call(app, "post", "/api/v1/cancellations", key, json=body)
    assert first.status == replay.status == 201
    assert replay.json == first.json
    assert replay.headers.get("idempotent-replayed") == "true"
    assert len(open_slots(app)) == 1
    # the same key with another body is a client bug, not a replay
    other = {
        **body,
        "slot_start": "2026-12-03T11:00:00-05:00",
        "slot_end": "2026-12-03T11:30:00-05:00",
    }
    clash = call(app, "post", "/api/v1/cancellations", key, json=other)
    assert clash.status == 422 and clash.json["field"] == "Idempotency-Key"
    assert len(open_slots(app)) == 1


def served(app: Sanic, method: str, path: str, headers: dict, **kw: Any) -> Any:
    """The app's answer as a server gives it, through its ASGI interface: sanic-testing's
    `test_client` answers a wrong method (405) itself, with an empty body, for HEAD, PATCH, PUT
    and DELETE."""

    async def send() -> Any:
        _, response = await getattr(app.asgi_client, method)(path, headers=headers, **kw)
        return response

    return asyncio.run(send())


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/patients/999", 404),  # our own 404
        ("get", "/api/v1/nothing-here", 404),  # Sanic's
        ("post", "/api/v1/patients", 422),
        ("put", "/api/v1/providers", 405),  # a wrong method
        ("delete", "/api/v1/cancellations", 405),
        ("patch", "/health", 405),
    ],
)
def test_errors_are_problem_json_with_a_list_of_errors(
    app: Sanic, method: str, path: str, status: int
) -> None:
    kwargs = {"json": {"phone": "555", "display_name": "A"}} if status == 422 else {}
    response = served(app, method, path, STAFF, **kwargs)
    assert response.status == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["errors"] and body["errors"][0]["detail"] == body["detail"]
    if status == 422:
        assert body["errors"][0]["field"] == "phone"
    if status == 405:
        assert "GET" in response.headers["allow"]  # what the client may use instead


def test_an_unexpected_failure_is_a_500_problem_that_hides_the_cause(app: Sanic) -> None:
    app.ctx.backend.session_factory = None  # every use case now fails inside
    response = call(app, "get", "/api/v1/cancellations", STAFF)
    assert response.status == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json["detail"] == "something went wrong on our side; nothing was changed"


def test_patients_are_found_by_name_or_phone_digits(app: Sanic) -> None:
    for n, name in enumerate(["Ana Ruiz", "Anabel", "Luis", "100%_Ana"]):
        body = {"phone": PHONES[n], "display_name": name}
        assert call(app, "post", "/api/v1/patients", STAFF, json=body).status == 201

    def names(query: str) -> list[str]:
        return [
            p["display_name"]
            for p in call(app, "get", f"/api/v1/patients?{query}", STAFF).json["items"]
        ]

    assert names("q=ana") == ["100%_Ana", "Ana Ruiz", "Anabel"]
    assert names("q=%25_") == ["100%_Ana"]  # % and _ are letters, not wildcards
    assert names("q=" + PHONES[2][-4:]) == ["Luis"]
    assert names("q=(202) 555-" + PHONES[2][-4:]) == ["Luis"]
    page = call(app, "get", "/api/v1/patients?q=ana&limit=2", STAFF).json
    assert (len(page["items"]), page["total"], page["next"]) == (2, 3, 2)
    last = call(app, "get", "/api/v1/patients?q=ana&limit=2&offset=2", STAFF).json
    assert ([p["display_name"] for p in last["items"]], last["next"]) == (["Anabel"], None)


LISTS = [
    "/api/v1/providers",
    "/api/v1/patients",
    "/api/v1/waitlist",
    "/api/v1/cancellations?status=all",
    "/api/v1/events",
    "/api/v1/users",
    "/api/v1/followups/booked",
    "/api/v1/followups/callbacks",
]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_is_a_page_of_items_with_total_and_next(app: Sanic, path: str) -> None:
    setup_clinic(app)
    call(app, "post", "/api/v1/providers", STAFF, json={"name": "Dr. Ortiz", "provider_type": "x"})
    sep = "&" if "?" in path else "?"
    first = call(app, "get", f"{path}{sep}limit=1", STAFF).json
    assert set(first) == {"items", "total", "next"}
    total = first["total"]
    assert len(first["items"]) == min(1, total)
    assert first["next"] == (1 if total > 1 else None)
    if total > 1:  # the last page says there is no next one
        last = call(app, "get", f"{path}{sep}limit=1&offset={total - 1}", STAFF).json
        assert (len(last["items"]), last["total"], last["next"]) == (1, total, None)
        assert last["items"] != first["items"]
    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        refused = call(app, "get", f"{path}{sep}{bad}", STAFF)
        assert refused.status == 400 and refused.json["field"] == bad.partition("=")[0]


def test_pages_of_events_walk_the_whole_trail_once(app: Sanic) -> None:
    setup_clinic(app)
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = call(app, "get", f"/api/v1/events?limit=2&offset={offset}", STAFF).json
        seen += [e["id"] for e in page["items"]]
        offset = page["next"]
    assert len(seen) == page["total"] >= 3 and seen == sorted(set(seen), reverse=True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"patient_id": "1"}, "patient_id"),  # a text is not a number
        ({"patient_id": 1, "urgent": "true"}, "urgent"),
        ({"patient_id": 1, "manual_boost": False}, "manual_boost"),  # nor is false
        ({"patient_id": 2**31}, "patient_id"),  # past what an id column holds
        ({"patient_id": 1, "location": "   "}, "location"),  # only white space
        ({"patient_id": 1, "earliest_time": "09:30:00Z"}, "earliest_time"),  # an offset
    ],
)
def test_bodies_are_read_strictly_as_the_document_says(app: Sanic, body: dict, field: str) -> None:
    response = call(app, "post", "/api/v1/waitlist", STAFF, json=body)
    assert response.status == 422 and response.json["field"] == field


def test_texts_are_stripped_after_their_rules_and_numbers_may_be_spaced(app: Sanic) -> None:
    body = {"phone": " +1 (202) 555-0142 ", "display_name": "  Ana  "}
    created = call(app, "post", "/api/v1/patients", STAFF, json=body)
    assert created.status == 201
    assert (created.json["phone"], created.json["display_name"]) == ("+12025550142", "Ana")
    wrong = call(app, "post", "/api/v1/patients", STAFF, json={**body, "phone": "12025550142"})
    assert wrong.status == 422 and wrong.json["detail"].startswith("phone: must be a dialable")


@pytest.mark.parametrize("query", ["limit=", "offset=", "status=", "limit=1.5"])
def test_an_empty_query_value_is_not_a_missing_one(app: Sanic, query: str) -> None:
    response = call(app, "get", f"/api/v1/waitlist?{query}", STAFF)
    assert response.status == 400 and response.json["field"] == query.partition("=")[0]


def test_a_wrong_method_on_a_path_with_an_id_names_the_allowed_ones(app: Sanic) -> None:
    response = served(app, "put", "/api/v1/patients/1", STAFF)
    assert response.status == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "PATCH"}
