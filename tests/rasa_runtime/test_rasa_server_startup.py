"""`python -m rasa_runtime.rasa_server`: the token from the environment (never argv), loopback by
default, bodies capped at 1 MB, and a refusal to start without RASA_API_TOKEN."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from runtime_testkit import (
    ROOT,
    accepts_connections,
    command_line,
    free_port,
    non_loopback_addresses,
    running_server,
    server_env,
)

from rasa_runtime import rasa_server
from rasa_runtime.rasa_server import MAX_BODY_BYTES, RasaServerSettings, StartupError

TOKEN = "rasa-api-test-token-0123456789abcdef"
MODEL = ROOT / "models" / "waitlist.tar.gz"


@pytest.fixture
def in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the default paths are the project's, as for `rasa run`
    for name in ("RASA_HOST", "RASA_PORT", "SANIC_REQUEST_MAX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")


def test_settings_come_from_the_environment(in_project: None) -> None:
    settings = RasaServerSettings.from_env([], {"RASA_API_TOKEN": TOKEN})
    assert settings == RasaServerSettings(
        host="127.0.0.1",
        port=5005,
        auth_token=TOKEN,
        model="models/waitlist.tar.gz",
        endpoints="endpoints.yml",
        credentials="credentials.yml",
    )
    other = RasaServerSettings.from_env(
        [], {"RASA_API_TOKEN": TOKEN, "RASA_HOST": "0.0.0.0", "RASA_PORT": "15005"}
    )
    assert (other.host, other.port) == ("0.0.0.0", 15005)


@pytest.mark.parametrize("token", ["", "   "])
def test_no_token_no_server(in_project: None, token: str) -> None:
    with pytest.raises(StartupError, match="RASA_API_TOKEN"):
        RasaServerSettings.from_env([], {"RASA_API_TOKEN": token})


def test_a_bad_port_is_named(in_project: None) -> None:
    with pytest.raises(StartupError, match="RASA_PORT"):
        RasaServerSettings.from_env([], {"RASA_API_TOKEN": TOKEN, "RASA_PORT": "http"})


def test_the_body_cap_keeps_an_explicit_setting() -> None:
    env: dict[str, str] = {}
    rasa_server.limit_request_bodies(env)
    assert env["SANIC_REQUEST_MAX_SIZE"] == str(MAX_BODY_BYTES)
    env = {"SANIC_REQUEST_MAX_SIZE": "65536"}
    rasa_server.limit_request_bodies(env)
    assert env["SANIC_REQUEST_MAX_SIZE"] == "65536"


def test_serve_hands_the_token_to_rasa_as_an_argument(
    in_project: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasa.core.run

    monkeypatch.setenv("RASA_TELEMETRY_ENABLED", "false")
    monkeypatch.setenv("LOG_LEVEL", "INFO")  # Rasa writes it back; restored afterwards
    for name, value in {
        "ACTION_ENDPOINT_URL": "http://127.0.0.1:5055/webhook",
        "ACTION_SERVER_TOKEN": "action-server-token-0123456789",
        "RASA_DB_HOST": "127.0.0.1",
        "RASA_DB_PORT": "5432",
        "RASA_DB_NAME": "waitlist",
        "RASA_DB_USER": "postgres",
        "RASA_DB_PASSWORD": "",
    }.items():
        monkeypatch.setenv(name, value)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(rasa.core.run, "serve_application", lambda **kw: calls.append(kw))
    settings = RasaServerSettings.from_env([], {"RASA_API_TOKEN": TOKEN})
    rasa_server.serve(settings)
    (call,) = calls
    assert call["auth_token"] == TOKEN
    assert call["interface"] == "127.0.0.1"
    assert call["port"] == 5005
    assert call["enable_api"] is True
    assert call["model_path"] == "models/waitlist.tar.gz"
    assert call["credentials"] == "credentials.yml"
    assert call["endpoints"].action.headers == {
        "Authorization": "Bearer action-server-token-0123456789"
    }


def test_main_caps_bodies_before_serving(in_project: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}
    monkeypatch.setenv("RASA_API_TOKEN", TOKEN)
    monkeypatch.setattr(rasa_server, "configure_logging", lambda service: None)
    monkeypatch.setattr(
        rasa_server,
        "serve",
        lambda settings, handler: bool(
            seen.update(
                limit=rasa_server.os.environ["SANIC_REQUEST_MAX_SIZE"], token=settings.auth_token
            )
            or True
        ),
    )
    assert rasa_server.main([]) == 0
    assert seen == {"limit": str(MAX_BODY_BYTES), "token": TOKEN}
    # a server that never listened (a port in use: Sanic only logs it) is a failed start
    monkeypatch.setattr(rasa_server, "serve", lambda settings, handler: False)
    assert rasa_server.main([]) == 1


def test_refuses_to_start_without_a_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rasa_runtime.rasa_server"],
        cwd=ROOT,
        env=server_env(RASA_API_TOKEN=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "RASA_API_TOKEN" in result.stderr


@pytest.mark.slow
def test_the_real_server(tmp_path: Path) -> None:
    """The trained model behind the API: token from the environment, 413, loopback only."""
    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    port = free_port()
    endpoints = tmp_path / "endpoints.yml"  # in-memory stores: no database needed here
    endpoints.write_text("lock_store:\n  type: in_memory\n")
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("{}\n")
    env = server_env(RASA_API_TOKEN=TOKEN, RASA_PORT=str(port), RASA_HOST="")
    url = f"http://127.0.0.1:{port}"
    command = ["--endpoints", str(endpoints), "--credentials", str(credentials)]
    with running_server(
        "rasa_runtime.rasa_server", env, f"{url}/", tmp_path / "rasa.log", args=command
    ) as process:
        assert TOKEN not in command_line(process.pid)
        # the port opens once the model is loaded, so GET / answering means it is
        assert httpx.get(f"{url}/status", params={"token": TOKEN}).json()["model_file"]
        assert httpx.get(f"{url}/status").status_code == 401
        assert httpx.get(f"{url}/status", params={"token": "wrong"}).status_code == 401
        parse = httpx.post(f"{url}/model/parse", params={"token": TOKEN}, json={"text": "yes"})
        assert parse.status_code == 200
        big = httpx.post(
            f"{url}/model/parse",
            params={"token": TOKEN},
            content=b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
        assert accepts_connections("127.0.0.1", port)
        for address in non_loopback_addresses():
            assert not accepts_connections(address, port), address
