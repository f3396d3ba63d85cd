"""Test kit for the Twilio SMS channel: a fake Twilio REST API, a scripted stand-in for Rasa's
agent, a real Sanic server running the channel's blueprint, signing and database helpers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sanic import Sanic

# The channel is imported as `channels.twilio_sms`, as Rasa does from the project root.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from rasa.core.channels.channel import InputChannel, UserMessage, register  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from channels.twilio_sms import TwilioSmsSettings, normalise_database_url  # noqa: E402

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
CLINIC_NUMBER = "+15005550006"
PATIENT_NUMBER = "+15551234567"
PUBLIC_BASE_URL = "https://clinic.example.org"
WEBHOOK_PATH = "/webhooks/twilio/webhook"
STATUS_CALLBACK_URL = PUBLIC_BASE_URL + "/webhooks/twilio/status"
BACKEND_DOWN_TEXT = "Sorry, we can't reach the clinic's system right now. We'll answer soon."
# Rasa 3.6's rasa.core.processor logs exactly this (with logger.exception) when a custom action
# raised, e.g. because the action server is down; the turn then goes on without its events.
FAILED_ACTION_LOG = (
    "Encountered an exception while running action '{}'."
    "Bot will continue, but the actions events are lost. "
    "Please check the logs of your action server for more information."
)


class FakeTwilio:
    """A local stand-in for api.twilio.com: creates messages (Messages.json POST) and lists them
    (Messages.json GET), recording every request."""

    def __init__(self) -> None:
        # Each Messages.json POST: path, Authorization header, form fields.
        self.requests: list[dict[str, Any]] = []
        # Each Messages.json GET: its query parameters.
        self.list_requests: list[dict[str, str]] = []
        # Every message Twilio took, oldest first (what the list endpoint answers from).
        self.messages: list[dict[str, Any]] = []
        # Queued (status, JSON body) answers; a 201 message resource when empty.
        self.answers: list[tuple[int, dict[str, Any]]] = []
        # Queued delays: the next POSTs take their message, then answer only after this long.
        self.answer_delays: list[float] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        # Set by stop(): hanging answers end then, not after the event loop is gone.
        self._stopping = asyncio.Event()
        self._hanging: set[asyncio.Task[Any]] = set()

    def _resource(self, message: dict[str, Any]) -> dict[str, Any]:
        account_sid = message["account_sid"]
        sid = message["sid"]
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": message["body"],
            "date_created": message["date_created"],
            "date_sent": None,
            "date_updated": message["date_created"],
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message["from"],
            "messaging_service_sid": message["messaging_service_sid"],
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {},
            "to": message["to"],
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }

    def _store(
        self,
        to: str | None,
        body: str | None,
        account_sid: str = ACCOUNT_SID,
        from_: str | None = CLINIC_NUMBER,
        messaging_service_sid: str | None = None,
    ) -> dict[str, Any]:
        message = {
            "account_sid": account_sid,
            "sid": "SM" + uuid.uuid4().hex,
            "to": to,
            "from": from_,
            "messaging_service_sid": messaging_service_sid,
            "body": body,
            "date_created": format_datetime(datetime.now(timezone.utc)),
        }
        self.messages.append(message)
        return message

    def add_message(self, to: str, body: str) -> str:
        """A message Twilio holds already (sent by an attempt whose answer was lost); its sid."""
        return str(self._store(to, body)["sid"])

    async def _create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(
            {
                "path": request.path,
                "authorization": request.headers.get("Authorization"),
                "form": {key: form.getall(key) for key in set(form.keys())},
            }
        )
        if self.answers:
            status, payload = self.answers.pop(0)
            return web.json_response(payload, status=status)

        def field(name: str) -> str | None:
            value = form.get(name)
            return None if value is None else str(value)

        message = self._store(
            field("To"),
            field("Body"),
            request.match_info["account_sid"],
            field("From"),
            field("MessagingServiceSid"),
        )
        if self.answer_delays:
            # Twilio took the text, but its answer does not reach the caller in time.
            delay = self.answer_delays.pop(0)
            task = asyncio.current_task()
            assert task is not None
            self._hanging.add(task)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
            finally:
                self._hanging.discard(task)
        return web.json_response(self._resource(message), status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        self.list_requests.append(dict(request.query))
        to = request.query.get("To")
        found = [m for m in reversed(self.messages) if to is None or m["to"] == to]
        account_sid = request.match_info["account_sid"]
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        return web.json_response(
            {
                "messages": [self._resource(message) for message in found],
                "end": max(len(found) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def start(self) -> None:
        app = web.Application()
        path = "/2010-04-01/Accounts/{account_sid}/Messages.json"
        app.router.add_post(path, self._create_message)
        app.router.add_get(path, self._list_messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._stopping.set()
        if self._hanging:
            await asyncio.wait(set(self._hanging), timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, status: int, code: int, message: str) -> None:
        self.answers.append(
            (
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
        )

    def hang_next(self, seconds: float) -> None:
        """The next POST is taken by Twilio, but answered only after `seconds`."""
        self.answer_delays.append(seconds)

    def bodies(self) -> list[str]:
        """The Body of each POST, in order."""
        return [request["form"]["Body"][0] for request in self.requests]


# What FakeAgent does in one turn.
REPLY = "reply"  # answers with `reply`, as a healthy turn does
RAISE = "raise"  # handle_message raises (the tracker store is down, say)
ACTION_FAILED = "action_failed"  # a custom action failed: Rasa only logs it, then goes on
BACKEND_DOWN = "backend_down"  # the action found the backend down and uttered utter_backend_down


class FakeAgent:
    """Stands in for Rasa's agent behind `register()`'s handler.

    `turns` scripts the next turns, one outcome each; once it is used up, each turn raises while
    `failures_left` lasts, then answers with `reply` (nothing when None).
    """

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []
        self.turns: list[str] = []
        self.failures_left = 0
        self.reply: str | None = None

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        outcome = self.turns.pop(0) if self.turns else REPLY
        if outcome == REPLY and self.failures_left > 0:
            self.failures_left -= 1
            outcome = RAISE
        if outcome == RAISE:
            raise RuntimeError("tracker store unavailable")
        if outcome == ACTION_FAILED:
            try:
                raise ConnectionError("action server unreachable")
            except ConnectionError:
                logging.getLogger("rasa.core.processor").exception(
                    FAILED_ACTION_LOG.format("action_accept_offer")
                )
            return
        if outcome == BACKEND_DOWN:
            await message.output_channel.send_text_message(
                message.sender_id, BACKEND_DOWN_TEXT, utter_action="utter_backend_down"
            )
            return
        if self.reply is not None:
            await message.output_channel.send_text_message(message.sender_id, self.reply)

    def texts(self) -> list[str | None]:
        return [message.text for message in self.messages]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Sanic 21 rewrites its Http class at each server start ("touch-up"); only test mode keeps
# the original around, so that more than one server can start in one process.
Sanic.test_mode = True


@contextlib.asynccontextmanager
async def serve_channel(
    channel: InputChannel,
    agent: FakeAgent,
    routes: Callable[[Sanic], None] | None = None,
) -> AsyncIterator[str]:
    """Runs the channel in a real Sanic server, wired exactly as `rasa run` wires it;
    `routes` adds more routes to the app (stand-ins for Rasa's own)."""
    app = Sanic(f"twilio_sms_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.ctx.agent = agent
    register([channel], app, "/webhooks/")
    if routes is not None:
        routes(app)
    port = _free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for this POST."""
    return RequestValidator(token).compute_signature(url, params)


def inbound_params(**overrides: str | None) -> dict[str, str]:
    """Form fields as Twilio posts them for an inbound SMS, blank geo fields included."""
    params: dict[str, str | None] = {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": "",
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": "",
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": "yes please",
        "FromCountry": "US",
        "To": CLINIC_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": PATIENT_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    clean = {key: value for key, value in params.items() if value is not None}
    clean["SmsMessageSid"] = clean["SmsSid"] = clean.get("MessageSid", "")
    return clean


def make_settings(fake: FakeTwilio | None = None, **overrides: Any) -> TwilioSmsSettings:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": CLINIC_NUMBER,
        "public_base_url": PUBLIC_BASE_URL,
        "api_base_url": fake.url if fake is not None else None,
        "database_url": None,
    }
    values.update(overrides)
    return TwilioSmsSettings(**values)


async def post_inbound(base_url: str, params: dict[str, str], query: str = "") -> httpx.Response:
    """POSTs an inbound SMS to the webhook, signed as Twilio signs it."""
    signature = sign(PUBLIC_BASE_URL + WEBHOOK_PATH + query, params)
    async with httpx.AsyncClient() as client:
        return await client.post(
            base_url + WEBHOOK_PATH + query,
            data=params,
            headers={"X-Twilio-Signature": signature},
        )


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Waits (without blocking the loop) until `condition()` holds; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.02)


def inbox_rows(database_url: str) -> dict[str, dict[str, Any]]:
    """Every `inbound_messages` row by MessageSid, read straight from PostgreSQL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT message_sid, phone, body, num_media, status, attempts,"
                    " next_attempt_at, lease_until, last_error, done_at, received_at"
                    " FROM inbound_messages ORDER BY received_at"
                )
            ).mappings()
            return {row["message_sid"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def ledger_rows(database_url: str) -> dict[str, dict[str, Any]]:
    """Every `sms_sends` row by ref, read straight from PostgreSQL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM sms_sends")).mappings()
            return {row["ref"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def run_sql(database_url: str, statement: str, **params: Any) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), params)
    finally:
        engine.dispose()
