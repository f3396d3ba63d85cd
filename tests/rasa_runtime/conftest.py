"""A real action server (`python -m rasa_runtime.action_server`) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_testkit import ActionServer, free_port, running_server, server_env


@pytest.fixture(scope="session")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActionServer]:
    port = free_port()
    token = "test-action-server-token-0123456789"
    env = server_env(
        ACTION_SERVER_TOKEN=token,
        ACTIONS_PORT=str(port),
        ACTIONS_HOST="",
        # a tighter cap meant for Rasa's webhook must not reach the action server's 1 MB
        SANIC_REQUEST_MAX_SIZE="65536",
    )
    url = f"http://127.0.0.1:{port}"
    log_path = Path(tmp_path_factory.mktemp("action-server")) / "actions.log"
    with running_server("rasa_runtime.action_server", env, f"{url}/health", log_path) as process:
        yield ActionServer(url=url, port=port, token=token, pid=process.pid)
