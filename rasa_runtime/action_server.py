"""`python -m rasa_runtime.action_server`: the custom actions (`actions/`), served as `rasa run
actions` serves them (rasa_sdk.endpoint.run), but fenced:

- every request except `GET /health` must carry `Authorization: Bearer $ACTION_SERVER_TOKEN`
  (Rasa sends it: `action_endpoint.headers` in endpoints.yml), else 401; an action may claim a slot
  for any phone, so nobody else may call one;
- it listens on ACTIONS_HOST (default 127.0.0.1), port ACTIONS_PORT (5055);
- request bodies are capped at 1 MB (413).

Without ACTION_SERVER_TOKEN it refuses to start.
"""

from __future__ import annotations

import hmac
import logging
import multiprocessing
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sanic import Sanic, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from sms_common.logging_setup import configure_logging

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055
MAX_BODY_BYTES = 1_000_000
ACTIONS_PACKAGE = "actions"
UNAUTHORIZED = {"error": "missing or wrong bearer token"}
# The only route a caller without the token may use: the launcher's and probes' liveness check.
OPEN_ROUTES = frozenset({("GET", "/health")})

log = logging.getLogger("rasa_runtime.action_server")


class StartupError(Exception):
    """A setting that stops the server from starting; the message names the setting."""


@dataclass(frozen=True)
class ActionServerSettings:
    host: str
    port: int
    token: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ActionServerSettings:
        env = os.environ if environ is None else environ
        token = env.get("ACTION_SERVER_TOKEN", "").strip()
        if not token:
            raise StartupError(
                "ACTION_SERVER_TOKEN is not set: the action server refuses to run unauthenticated"
            )
        raw_port = env.get("ACTIONS_PORT", "").strip() or str(DEFAULT_PORT)
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise StartupError(f"ACTIONS_PORT must be a port number, got {raw_port!r}")
        return cls(
            host=env.get("ACTIONS_HOST", "").strip() or DEFAULT_HOST,
            port=int(raw_port),
            token=token,
        )


def require_bearer_token(app: Sanic, token: str) -> None:
    """Answer 401 to every request but OPEN_ROUTES unless it carries the bearer token."""
    expected = f"Bearer {token}".encode()

    async def check_bearer_token(request: Request) -> HTTPResponse | None:
        if (request.method, request.path) in OPEN_ROUTES:
            return None
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if hmac.compare_digest(given, expected):  # constant time: no timing oracle on the token
            return None
        return response.json(UNAUTHORIZED, status=401, headers={"WWW-Authenticate": "Bearer"})

    app.register_middleware(check_bearer_token, "request")

    async def check_first(running_app: Sanic, _: Any) -> None:
        # sanic-cors puts its middleware at the head of the chain when the server starts, and
        # would answer CORS preflights before the check; the token check must come first.
        middleware = running_app.request_middleware
        middleware.remove(check_bearer_token)
        middleware.appendleft(check_bearer_token)

    # registered after create_app()'s own listeners, so it runs after sanic-cors's
    app.register_listener(check_first, "before_server_start")


def create_action_app(token: str, package: str = ACTIONS_PACKAGE) -> Sanic:
    """rasa_sdk's app (routes /health, /webhook, /actions) with the token check and body cap."""
    # sanic-cors (imported by rasa_sdk) warns about distutils on every start
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="sanic_cors")
    from rasa_sdk.endpoint import create_app

    # no CORS origins: no browser has any business calling the action server
    app = create_app(package, cors_origins=None)
    # Fixed, whatever SANIC_REQUEST_MAX_SIZE says (Sanic reads it into every app's config): a
    # tighter cap meant for Rasa's public webhook would refuse Rasa's own calls, which carry the
    # whole tracker and domain.
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES

    # rasa_sdk turns every exception into a 500; an oversized body is the caller's fault
    @app.exception(PayloadTooLarge)
    async def payload_too_large(_: Request, error: PayloadTooLarge) -> HTTPResponse:
        return response.json({"error": str(error)}, status=413)

    require_bearer_token(app, token)
    return app


def main() -> int:
    try:
        settings = ActionServerSettings.from_env()
    except StartupError as error:
        print(f"action server: {error}", file=sys.stderr)
        return 2
    from rasa_sdk import utils

    # what rasa_sdk/__main__.py does, with our handler instead of coloredlogs
    configure_logging("actions")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    utils.update_sanic_log_level()
    app = create_action_app(settings.token)
    # shared with forked workers (ACTION_SERVER_SANIC_WORKERS > 1)
    listened = multiprocessing.Value("b", 0)

    async def note_listening(_app: Sanic, _loop: Any) -> None:
        listened.value = 1
        log.info("Action endpoint is up and running on http://%s:%s", settings.host, settings.port)

    app.register_listener(note_listening, "after_server_start")
    app.run(settings.host, settings.port, workers=utils.number_of_sanic_workers())
    if not listened.value:  # Sanic only logs a failed bind; a supervisor must see a failure
        log.error("the action server never listened on %s:%s", settings.host, settings.port)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
