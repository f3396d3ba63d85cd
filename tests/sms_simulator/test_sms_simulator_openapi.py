"""The simulator answers exactly what Twilio's OpenAPI description of Messages says."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from sms_simulator_testkit import (
    ACCOUNT_SID,
    PATIENT,
    PROJECT_ROOT,
    Receiver,
    RunningSimulator,
    auth,
    send,
)

SPEC = json.loads(
    (PROJECT_ROOT / "sms_simulator" / "twilio-messages-openapi.json").read_text(encoding="utf-8")
)
LIST_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
INSTANCE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
ERROR_KEYS = {"code": int, "message": str, "more_info": str, "status": int}


def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    if not reference:
        return schema
    node: Any = SPEC
    for part in reference.lstrip("#/").split("/"):
        node = node[part]
    return node


def response_schema(path: str, method: str, status: str) -> Mapping[str, Any]:
    return resolve(
        SPEC["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    )


def check_value(name: str, value: Any, schema: Mapping[str, Any]) -> None:
    schema = resolve(schema)
    if value is None:
        assert schema.get("nullable", False), f"{name} is null but not nullable"
        return
    kind = schema.get("type")
    python_types = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    if kind:
        assert isinstance(value, python_types[kind]), f"{name}: {value!r} is not {kind}"
        if kind == "integer":
            assert not isinstance(value, bool)
    if "enum" in schema:
        assert value in schema["enum"], f"{name}: {value!r} not in enum"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{name}: {value!r} !~ {schema['pattern']}"
    if "minLength" in schema:
        assert len(value) >= schema["minLength"]
    if "maxLength" in schema:
        assert len(value) <= schema["maxLength"]
    if schema.get("format") == "date-time-rfc-2822":
        assert parsedate_to_datetime(value).tzinfo is not None, f"{name}: {value!r} is not RFC 2822"
    if kind == "object" and "properties" in schema:
        check_object(value, schema)
    if kind == "array" and "items" in schema:
        for item in value:
            check_value(name + "[]", item, schema["items"])


def check_object(payload: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    properties = schema["properties"]
    assert set(payload) == set(properties), (
        f"extra: {set(payload) - set(properties)}, missing: {set(properties) - set(payload)}"
    )
    for name, property_schema in properties.items():
        check_value(name, payload[name], property_schema)


def check_error(answer: httpx.Response, status: int, code: int) -> None:
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == set(ERROR_KEYS)
    for key, kind in ERROR_KEYS.items():
        assert isinstance(body[key], kind)
    assert body["code"] == code
    assert body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_spec_copy_is_the_messages_subset() -> None:
    assert set(SPEC["paths"]) == {LIST_PATH, INSTANCE_PATH}
    assert "MIT" in SPEC["info"]["description"]


def test_create_answers_the_schema_exactly(simulator: RunningSimulator) -> None:
    answer = send(simulator, StatusCallback=None)
    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("application/json")
    message = answer.json()
    check_object(message, response_schema(LIST_PATH, "post", "201"))
    assert message["sid"].startswith("SM")
    assert message["status"] == "queued"
    assert message["direction"] == "outbound-api"
    assert message["account_sid"] == ACCOUNT_SID
    assert message["to"] == PATIENT
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message['sid']}.json"


def test_fetch_and_list_answer_the_schema(simulator: RunningSimulator, receiver: Receiver) -> None:
    sid = send(simulator).json()["sid"]
    fetched = httpx.get(simulator.api(f"/Messages/{sid}.json"), auth=auth())
    assert fetched.status_code == 200
    check_object(fetched.json(), response_schema(INSTANCE_PATH, "get", "200"))

    listed = httpx.get(simulator.api("/Messages.json"), auth=auth())
    assert listed.status_code == 200
    check_object(listed.json(), response_schema(LIST_PATH, "get", "200"))


def test_media_message_gets_an_mm_sid(simulator: RunningSimulator) -> None:
    answer = send(simulator, Body=None, MediaUrl="https://example.org/map.png")
    assert answer.status_code == 201
    check_object(answer.json(), response_schema(LIST_PATH, "post", "201"))
    assert answer.json()["sid"].startswith("MM")
    assert answer.json()["num_media"] == "1"


def _valid_value(name: str, schema: Mapping[str, Any]) -> Any:
    schema = resolve(schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [_valid_value(name, schema["items"])]
    if kind == "boolean":
        return "true"
    if kind == "integer":
        return "1"
    if kind == "number":
        return "0.5"
    if "pattern" in schema:
        prefix = re.match(r"\^\(?([A-Z]{2})", schema["pattern"]).group(1)
        return prefix + "0" * 32
    if schema.get("format") == "phone-number":
        return "+15550001111"
    if schema.get("format") == "uri":
        return "https://example.org/status"
    if schema.get("format") == "date-time":
        return "2030-01-01T10:00:00Z"
    return "text"


def test_every_documented_request_field_is_accepted(simulator: RunningSimulator) -> None:
    request_schema = SPEC["paths"][LIST_PATH]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]["schema"]
    data = {
        name: _valid_value(name, schema) for name, schema in request_schema["properties"].items()
    }
    data["To"] = PATIENT
    data["Body"] = "hello"
    data["StatusCallback"] = "http://127.0.0.1:9/status"  # nothing listens: logged, not fatal
    data["UnknownParameter"] = "ignored like Twilio does"
    answer = httpx.post(simulator.api("/Messages.json"), data=data, auth=auth())
    assert answer.status_code == 201, answer.text
    check_object(answer.json(), response_schema(LIST_PATH, "post", "201"))
    assert answer.json()["messaging_service_sid"] == data["MessagingServiceSid"]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": None}, 21604),
        ({"To": ""}, 21604),
        ({"To": "5551234567"}, 21211),
        ({"To": "+1 555 123 4567"}, 21211),
        ({"From": None}, 21603),
        ({"From": "+0555"}, 21212),
        ({"From": None, "MessagingServiceSid": "MGnot-a-sid"}, 21701),
        ({"Body": None}, 21602),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"StatusCallback": "not a url"}, 21609),
        ({"StatusCallback": "http://bad_host.example/status"}, 21609),
        ({"ProvideFeedback": "maybe"}, 400),
        ({"ValidityPeriod": "soon"}, 400),
        ({"MaxPrice": "cheap"}, 400),
        ({"ContentRetention": "forever"}, 400),
    ],
)
def test_bad_requests_answer_twilio_errors(
    simulator: RunningSimulator, form: dict[str, Any], code: int
) -> None:
    check_error(send(simulator, **form), 400, code)
    assert httpx.get(simulator.url + "/simulator/messages").json() == []


def test_unknown_message_is_a_twilio_404(simulator: RunningSimulator) -> None:
    check_error(httpx.get(simulator.api(f"/Messages/SM{'0' * 32}.json"), auth=auth()), 404, 20404)
