"""GET /api/v1/cancellations/{id}/why: what each eligibility rule excludes, and who is left."""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from tests.backend.builders import PHONES
from tests.backend.integration.test_api import STAFF, app, call  # noqa: F401  (the app fixture)

THURSDAY = {"slot_start": "2026-12-03T10:00:00-05:00", "slot_end": "2026-12-03T10:30:00-05:00"}


def waitlisted(app: Sanic, n: int, **entry: Any) -> int:  # noqa: F811
    patient = call(
        app,
        "post",
        "/api/v1/patients",
        STAFF,
        json={"phone": PHONES[n], "display_name": f"P{n}", "preferred_language": "en"},
    ).json["id"]
    call(app, "post", "/api/v1/waitlist", STAFF, json={"patient_id": patient, **entry})
    return patient


def provider(app: Sanic, kind: str) -> int:  # noqa: F811
    body = {"name": f"Dr. {kind}", "provider_type": kind}
    return call(app, "post", "/api/v1/providers", STAFF, json=body).json["id"]


def test_a_filling_slot_says_how_many_are_left_and_why_the_rest_are_not(app: Sanic) -> None:  # noqa: F811
    derm = provider(app, "derm")
    provider(app, "cardio")
    for n in range(4):
        waitlisted(app, n, provider_type="derm")
    waitlisted(app, 4, provider_type="cardio")
    waitlisted(app, 5, provider_type="derm", days_of_week=["mon"])
    waitlisted(app, 6, provider_type="derm", location="Elm Street")
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json
    assert len(slot["offers"]) == 3  # three seats, taken by the first three derm patients

    why = call(app, "get", f"/api/v1/cancellations/{slot['id']}/why", STAFF).json
    assert why["active_entries"] == 7
    assert why["eligible_patients"] == 1
    assert why["pending_offers"] == 3
    assert {rule: n for rule, n in why["excluded_by"].items() if n} == {
        "provider": 1,
        "location": 1,
        "day_of_week": 1,
        "already_offered_this_slot": 3,
        "holds_another_offer": 3,
    }
    assert why["summary"] == "next seat refills from 1 eligible patient"


def test_a_slot_nobody_can_take_says_who_was_turned_away(app: Sanic) -> None:  # noqa: F811
    derm = provider(app, "derm")
    waitlisted(app, 0, provider_type="cardio")
    waitlisted(app, 1, provider_type="cardio")
    waitlisted(app, 2, provider_type="derm", days_of_week=["mon", "tue"])
    slot = call(
        app,
        "post",
        "/api/v1/cancellations",
        STAFF,
        json={"provider_id": derm, "location": "Main", **THURSDAY},
    ).json
    assert slot["offers"] == []
    why = call(app, "get", f"/api/v1/cancellations/{slot['id']}/why", STAFF).json
    assert why["eligible_patients"] == 0
    assert why["summary"] == (
        "nobody eligible: 2 do not match the provider, 1 do not want that weekday"
    )


def test_why_of_an_unknown_slot_is_404(app: Sanic) -> None:  # noqa: F811
    assert call(app, "get", "/api/v1/cancellations/999/why", STAFF).status == 404
