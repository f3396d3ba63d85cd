"""endpoints.yml makes Rasa send `Authorization: Bearer $ACTION_SERVER_TOKEN` to the action
server, read the way `rasa run` reads it (AvailableEndpoints.read_endpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.utils import AvailableEndpoints
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import ClientResponseError
from runtime_testkit import ROOT, ActionServer

TOKEN = "endpoints-test-token-0123456789abcdef"
DB_SETTINGS = {
    "RASA_DB_HOST": "127.0.0.1",
    "RASA_DB_PORT": "5432",
    "RASA_DB_NAME": "waitlist",
    "RASA_DB_USER": "postgres",
    "RASA_DB_PASSWORD": "",
}


@pytest.fixture
def endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DB_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:5055/webhook")
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)


def test_the_header_is_substituted_from_the_environment(endpoint_env: None) -> None:
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    assert endpoints.action is not None
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    assert endpoints.action.headers == {"Authorization": f"Bearer {TOKEN}"}
    # the token travels in a header, not in the URL where access logs would keep it
    assert endpoints.action.token is None
    assert TOKEN not in endpoints.action.url


def test_rasa_refuses_the_file_when_the_token_is_unset(
    endpoint_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTION_SERVER_TOKEN")
    with pytest.raises(RasaException, match="ACTION_SERVER_TOKEN"):
        AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))


def test_a_quoted_value_would_not_be_substituted(endpoint_env: None, tmp_path: Path) -> None:
    # why endpoints.yml keeps the value unquoted: Rasa resolves ${VAR} in plain scalars only
    quoted = tmp_path / "endpoints.yml"
    quoted.write_text(
        "action_endpoint:\n"
        "  url: ${ACTION_ENDPOINT_URL}\n"
        "  headers:\n"
        '    Authorization: "Bearer ${ACTION_SERVER_TOKEN}"\n'
    )
    endpoints = AvailableEndpoints.read_endpoints(str(quoted))
    assert endpoints.action.headers == {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}


@pytest.mark.asyncio
async def test_rasa_s_action_calls_carry_the_token(
    action_server: ActionServer, monkeypatch: pytest.MonkeyPatch, endpoint_env: None
) -> None:
    """The EndpointConfig Rasa builds from endpoints.yml gets past the action server's check."""
    monkeypatch.setenv("ACTION_ENDPOINT_URL", f"{action_server.url}/webhook")
    monkeypatch.setenv("ACTION_SERVER_TOKEN", action_server.token)
    action = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml")).action
    call = {"next_action": "action_that_does_not_exist", "tracker": {}, "domain": {}}
    with pytest.raises(ClientResponseError) as raised:
        await action.request(json=call, method="post")
    assert raised.value.status == 404  # rasa_sdk's "no registered action", past the check

    monkeypatch.setenv("ACTION_SERVER_TOKEN", "a-token-the-server-does-not-know")
    action = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml")).action
    with pytest.raises(ClientResponseError) as raised:
        await action.request(json=call, method="post")
    assert raised.value.status == 401
