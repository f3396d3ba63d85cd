"""Test kit for the Twilio SMS channel: a fake Twilio REST API, a real Sanic server running
the channel's blueprint, signing helpers."""

from __future__ import annotations

import contextlib
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from sanic import Sanic

# The channel is imported as `channels.twilio_sms`, as Rasa does from the project root.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from rasa.core.channels.channel import InputChannel, UserMessage, register  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from channels.twilio_sms import TwilioSmsSettings  # noqa: E402

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
CLINIC_NUMBER = "+15005550006"
PATIENT_NUMBER = "+15551234567"
PUBLIC_BASE_URL = "https://clinic.example.org"


class FakeTwilio:
    """A local stand-in for api.twilio.com that records each Messages.json POST."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # Queued (status, JSON body) answers; a 201 message resource when empty.
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

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
        sid = "SM" + uuid.uuid4().hex
        account_sid = request.match_info["account_sid"]
        return web.json_response(
            {
                "account_sid": account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body"),
                "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
                "date_sent": None,
                "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": None,
                "sid": sid,
                "status": "queued",
                "subresource_uris": {},
                "to": form.get("To"),
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(
            "/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

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


class FakeAgent:
    """Stands in for Rasa's agent behind `register()`'s handler."""

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []
        self.failures_left = 0
        self.reply: str | None = None

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("tracker store unavailable")
        if self.reply is not None:
            await message.output_channel.send_text_message(message.sender_id, self.reply)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Sanic 21 rewrites its Http class at each server start ("touch-up"); only test mode keeps
# the original around, so that more than one server can start in one process.
Sanic.test_mode = True


@contextlib.asynccontextmanager
async def serve_channel(channel: InputChannel, agent: FakeAgent) -> AsyncIterator[str]:
    """Runs the channel in a real Sanic server, wired exactly as `rasa run` wires it."""
    app = Sanic(f"twilio_sms_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.ctx.agent = agent
    register([channel], app, "/webhooks/")
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
