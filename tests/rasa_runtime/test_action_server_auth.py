"""The action server answers only callers holding ACTION_SERVER_TOKEN, caps bodies at 1 MB and
listens on loopback unless told otherwise."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from runtime_testkit import (
    ROOT,
    ActionServer,
    accepts_connections,
    command_line,
    non_loopback_addresses,
    server_env,
)

from rasa_runtime.action_server import MAX_BODY_BYTES, UNAUTHORIZED

# the shape of what Rasa 3.6 POSTs to /webhook, for an action no one registered
UNKNOWN_ACTION_CALL = {
    "next_action": "action_that_does_not_exist",
    "sender_id": "+12025550101",
    "tracker": {"sender_id": "+12025550101", "slots": {}, "events": [], "latest_message": {}},
    "domain": {},
    "version": "3.6.21",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(action_server: ActionServer) -> None:
    response = httpx.get(f"{action_server.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "test-action-server-token-0123456789"},  # the token without "Bearer"
    ],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
def test_webhook_refuses_without_the_right_token(
    action_server: ActionServer, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{action_server.url}/webhook", json=UNKNOWN_ACTION_CALL, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/actions"), ("POST", "/health"), ("OPTIONS", "/webhook"), ("GET", "/nothing")],
)
def test_every_other_route_needs_the_token(
    action_server: ActionServer, method: str, path: str
) -> None:
    # a CORS preflight too: the check runs before sanic-cors's own middleware
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    response = httpx.request(method, f"{action_server.url}{path}", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_the_right_token_reaches_the_rasa_sdk_app(action_server: ActionServer) -> None:
    actions = httpx.get(f"{action_server.url}/actions", headers=bearer(action_server.token))
    assert actions.status_code == 200
    assert {"name": "action_accept"} in actions.json()
    # rasa_sdk's own answer for an unregistered action: the call got past the check
    response = httpx.post(
        f"{action_server.url}/webhook",
        json=UNKNOWN_ACTION_CALL,
        headers=bearer(action_server.token),
    )
    assert response.status_code == 404
    assert response.json()["action_name"] == "action_that_does_not_exist"


def test_a_body_over_1_mb_gets_413(action_server: ActionServer) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    response = httpx.post(
        f"{action_server.url}/webhook",
        content=big,
        headers={**bearer(action_server.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    # just under the cap, the body is read (and refused as JSON, not for its size)
    small = httpx.post(
        f"{action_server.url}/webhook",
        content=b"x" * (MAX_BODY_BYTES - 1000),
        headers={**bearer(action_server.token), "Content-Type": "application/json"},
    )
    assert small.status_code == 400


def test_the_token_is_not_on_the_command_line(action_server: ActionServer) -> None:
    assert action_server.token not in command_line(action_server.pid)


def test_listens_on_loopback_only(action_server: ActionServer) -> None:
    assert accepts_connections("127.0.0.1", action_server.port)
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address to try")
    for address in addresses:
        assert not accepts_connections(address, action_server.port), address


def test_refuses_to_start_without_a_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rasa_runtime.action_server"],
        cwd=ROOT,
        env=server_env(ACTION_SERVER_TOKEN=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ACTION_SERVER_TOKEN" in result.stderr
