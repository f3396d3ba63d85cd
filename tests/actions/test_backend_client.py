"""The reply API client: URL, auth, retries and the single failure type."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from actions.backend_client import BackendClient, BackendUnavailable, mask_phone

OK_BODY = {"outcome": "claimed", "offer": None, "patient": {"language": "en"}}


def client_with(handler, **kwargs) -> BackendClient:
    return BackendClient(
        base_url="http://backend.test/",
        token="secret",
        backoff=0,
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def test_posts_to_the_contract_path_with_token_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK_BODY)

    reply = asyncio.run(client_with(handler).reply("accept", "+15551234567", "SM1"))
    assert reply.outcome == "claimed"
    assert reply.language == "en"
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "http://backend.test/internal/v1/replies/accept"
    assert request.headers["Authorization"] == "Bearer secret"
    assert json.loads(request.content) == {"phone": "+15551234567", "message_id": "SM1"}


def test_current_offer_keeps_the_literal_plus_in_the_phone() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"outcome": "no_open_offer", "offer": None, "patient": None}
        )

    asyncio.run(client_with(handler).current_offer("+15551234567"))
    assert seen[0].url.path == "/internal/v1/offers/current"
    assert seen[0].url.params["phone"] == "+15551234567"


def test_retries_5xx_then_succeeds() -> None:
    statuses = [503, 502, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.pop(0)
        return httpx.Response(status, json=OK_BODY if status == 200 else {"error": "busy"})

    reply = asyncio.run(client_with(handler).reply("accept", "+1555", "SM1"))
    assert reply.outcome == "claimed"
    assert statuses == []


def test_retries_connection_errors_then_gives_up() -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("refused", request=request)

    client = BackendClient(
        base_url="http://backend.test/",
        token="secret",
        backoff=0.02,
        deadline=0.3,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(BackendUnavailable, match="ConnectError"):
        asyncio.run(client.reply("decline", "+1555", "SM1"))
    assert 3 <= len(attempts) < 20


def test_4xx_is_not_retried() -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(401, json={"error": "bad token", "field": "Authorization"})

    with pytest.raises(BackendUnavailable, match="401"):
        asyncio.run(client_with(handler).reply("accept", "+1555", "SM1"))
    assert len(attempts) == 1


def test_a_slow_claim_is_retried_with_the_same_message_id_until_it_answers() -> None:
    """The backend was still working on the claim when the first attempt timed out: the retry
    carries the same message id, so it returns that claim's outcome instead of "trouble"."""
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=OK_BODY)

    reply = asyncio.run(client_with(handler).reply("accept", "+1555", "SM1"))
    assert reply.outcome == "claimed"
    assert bodies == [{"phone": "+1555", "message_id": "SM1"}] * 2


def test_default_deadline_outlasts_the_backends_slowest_claim() -> None:
    client = BackendClient(base_url="http://backend.test")
    assert client._deadline > 10 + client._timeout  # lock_timeout 10 s, then one more attempt


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[]", b'{"outcome": 3}'])
def test_malformed_answers_are_unavailable(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with pytest.raises(BackendUnavailable):
        asyncio.run(client_with(handler).reply("accept", "+1555", "SM1"))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND_URL", "http://10.0.0.5:9000/")
    monkeypatch.setenv("ACTIONS_API_TOKEN", "from-env")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK_BODY)

    client = BackendClient(transport=httpx.MockTransport(handler))
    asyncio.run(client.reply("opt_out", "+1555", "SM1"))
    assert str(seen[0].url) == "http://10.0.0.5:9000/internal/v1/replies/opt_out"
    assert seen[0].headers["Authorization"] == "Bearer from-env"


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKEND_URL", raising=False)
    assert BackendClient().base_url == "http://127.0.0.1:8000"


def test_mask_phone() -> None:
    assert mask_phone("+15551234567") == "+1******4567"
    assert mask_phone(None) == "<none>"
