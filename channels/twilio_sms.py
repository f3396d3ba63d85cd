"""Secure Twilio SMS channel for Rasa 3.6.

Replaces Rasa's stock ``twilio`` channel, which validates no signature, blocks the event
loop on every send, swallows send errors and answers 500 to a message without a Body.

Inbound (``POST /webhooks/twilio/webhook``):
- ``X-Twilio-Signature`` is checked against ``PUBLIC_BASE_URL`` + path + query, because
  in production a reverse proxy forwards the public URL Twilio signed to this server.
- Each ``MessageSid`` is processed once (table ``inbound_messages``), so Twilio's
  redeliveries have no second effect.
- Replies go out through the REST API, never TwiML, so the webhook answers empty TwiML.

Outbound: ``messages.create_async`` through one shared aiohttp session; a send error
raises, so that ``trigger_intent`` answers 500 and the backend can free the offer's seat.

Logs mask phone numbers and never contain message bodies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import ClientError, ClientSession
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

logger = logging.getLogger(__name__)

CHANNEL_NAME = "twilio"
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio SIDs are two letters + 32 hex; accept any short alphanumeric id to stay lenient.
MESSAGE_SID_PATTERN = re.compile(r"^[A-Za-z0-9]{2,64}$")
TWILIO_API_ORIGIN = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MEDIA_ONLY_REPLY = "Sorry, we can only read text messages. Reply YES, NO or HELP."
# Twilio rejects bodies over 1,600 characters (error 21617).
MAX_SMS_BODY = 1600
DEFAULT_SEND_TIMEOUT = 15.0

_PHONE_IN_TEXT = re.compile(r"\+?\d{7,15}")

# twilio's HTTP client logs every request's URL and headers at INFO; keep that at WARNING
# unless logging is configured otherwise for this logger.
_twilio_http_logger = logging.getLogger(f"{__name__}.http")
_twilio_http_logger.setLevel(logging.WARNING)


# --------------------------------------------------------------------------- helpers


def mask_phone(phone: str | None) -> str:
    """Masks a phone number for logs: ``+15551234567`` -> ``+1******4567``."""
    if not phone:
        return "<none>"
    text = phone.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return "***"
    prefix = "+" if text.startswith("+") else ""
    if len(digits) <= 6:
        # Too short to reveal any digit without revealing most of it.
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 5)}{digits[-4:]}"


def mask_phones_in_text(text: str) -> str:
    """Masks every phone-like number inside free text (e.g. a Twilio error message)."""
    return _PHONE_IN_TEXT.sub(lambda match: mask_phone(match.group(0)), text)


def is_e164(phone: str | None) -> bool:
    return phone is not None and E164_PATTERN.match(phone) is not None


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _setting(credentials: Mapping[str, Any], keys: tuple[str, ...], env: str) -> str | None:
    """First non-empty value among the credential keys, else the environment variable."""
    for key in keys:
        value = credentials.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return _env(env)


class FormParams(dict[str, list[str]]):
    """Form fields with every value, blank ones included.

    Sanic 21's ``request.form`` drops blank values, but Twilio signs them too (an MMS has
    ``Body=``, most messages have ``FromCity=``), so validating against it would reject
    genuine requests.
    """

    @classmethod
    def parse(cls, body: bytes) -> FormParams:
        params = cls()
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            params.setdefault(key, []).append(value)
        return params

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        # The name RequestValidator looks for on multi-value dicts.
        return self[name]


def normalise_database_url(url: str) -> str:
    """Points a ``postgres[ql][+driver]://`` URL at psycopg2, the driver of Rasa's venv."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator or scheme.split("+", 1)[0].lower() not in ("postgres", "postgresql"):
        # Don't echo the URL: it usually carries a password.
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+psycopg2://{rest}"


# ----------------------------------------------------------------------- dedup stores


class InboundDedupStore(Protocol):
    """Remembers processed inbound MessageSids. Methods block; call them in an executor."""

    def claim(self, message_sid: str) -> bool:
        """Records the sid; True if it was new, False if it had been seen before."""

    def release(self, message_sid: str) -> None:
        """Forgets the sid so that a redelivery is processed again."""


class PostgresInboundDedupStore:
    """Dedup on the backend's ``inbound_messages`` table, shared by every Rasa replica."""

    def __init__(self, database_url: str) -> None:
        import sqlalchemy

        self._sql = sqlalchemy
        # create_engine doesn't connect, so Rasa starts even while the database is down.
        self._engine = sqlalchemy.create_engine(
            normalise_database_url(database_url),
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=4,
            future=True,
        )

    def claim(self, message_sid: str) -> bool:
        statement = self._sql.text(
            "INSERT INTO inbound_messages (message_sid) VALUES (:sid) "
            "ON CONFLICT (message_sid) DO NOTHING RETURNING message_sid"
        )
        with self._engine.begin() as connection:
            return connection.execute(statement, {"sid": message_sid}).first() is not None

    def release(self, message_sid: str) -> None:
        statement = self._sql.text("DELETE FROM inbound_messages WHERE message_sid = :sid")
        with self._engine.begin() as connection:
            connection.execute(statement, {"sid": message_sid})

    def dispose(self) -> None:
        self._engine.dispose()


class MemoryInboundDedupStore:
    """Per-process dedup for development without DATABASE_URL (not shared by replicas)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, message_sid: str) -> bool:
        with self._lock:
            if message_sid in self._seen:
                return False
            self._seen[message_sid] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def release(self, message_sid: str) -> None:
        with self._lock:
            self._seen.pop(message_sid, None)


# ------------------------------------------------------------------------ sending


class TwilioSendError(RasaException):
    """An SMS could not be handed to Twilio. The message names no number and no body."""


class RewritingAsyncTwilioHttpClient(AsyncTwilioHttpClient):
    """twilio's aiohttp client, pointed at ``api_base_url`` instead of api.twilio.com.

    ``TWILIO_API_BASE_URL`` lets development and tests use a Twilio-compatible server.
    The session is created lazily on the running loop (aiohttp binds a session to the
    loop it was created on) and then reused for every message.
    """

    def __init__(
        self, api_base_url: str | None = None, timeout: float = DEFAULT_SEND_TIMEOUT
    ) -> None:
        super().__init__(pool_connections=False, timeout=timeout, logger=_twilio_http_logger)
        self.api_base_url = api_base_url.rstrip("/") if api_base_url else None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def rewrite_url(self, url: str) -> str:
        if self.api_base_url and url.startswith(TWILIO_API_ORIGIN):
            return self.api_base_url + url[len(TWILIO_API_ORIGIN) :]
        return url

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        loop = asyncio.get_running_loop()
        if self.session is None or self.session.closed or self._session_loop is not loop:
            self.session = ClientSession()
            self._session_loop = loop
        return await super().request(
            method,
            self.rewrite_url(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            # aiohttp reads an explicit None as "no timeout at all".
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()
        self.session = None


@dataclass(frozen=True)
class TwilioSmsSettings:
    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    public_base_url: str | None = None
    api_base_url: str | None = None
    database_url: str | None = None
    media_only_reply: str = MEDIA_ONLY_REPLY
    send_timeout: float = DEFAULT_SEND_TIMEOUT

    @property
    def status_callback_url(self) -> str | None:
        if not self.public_base_url:
            return None
        return self.public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


class TwilioSmsSender:
    """One Twilio REST client and one HTTP session for the whole process."""

    def __init__(self, settings: TwilioSmsSettings) -> None:
        self.settings = settings
        self.http_client = RewritingAsyncTwilioHttpClient(
            settings.api_base_url, settings.send_timeout
        )
        self.client = Client(
            settings.account_sid, settings.auth_token, http_client=self.http_client
        )

    async def send(
        self, to: str, body: str | None = None, media_urls: list[str] | None = None
    ) -> str:
        """Queues one SMS/MMS at Twilio and returns its sid; raises TwilioSendError."""
        if not is_e164(to):
            raise TwilioSendError(
                f"Refusing to send an SMS to a non-E.164 recipient {mask_phone(to)}"
            )
        kwargs: dict[str, Any] = {"to": to}
        if body is not None:
            kwargs["body"] = body
        if media_urls:
            kwargs["media_url"] = media_urls
        if self.settings.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            kwargs["from_"] = self.settings.from_number
        if self.settings.status_callback_url:
            kwargs["status_callback"] = self.settings.status_callback_url
        try:
            message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as error:
            detail = mask_phones_in_text(str(error.msg or ""))
            logger.error(
                "Twilio refused an SMS to %s: HTTP %s, code %s, %s",
                mask_phone(to),
                error.status,
                error.code,
                detail,
            )
            raise TwilioSendError(
                f"Twilio refused an SMS to {mask_phone(to)}: HTTP {error.status}, code {error.code}"
            ) from None
        except (ClientError, asyncio.TimeoutError, OSError, TwilioException) as error:
            logger.error(
                "Could not reach Twilio to send an SMS to %s: %s",
                mask_phone(to),
                type(error).__name__,
            )
            raise TwilioSendError(
                f"Could not reach Twilio to send an SMS to {mask_phone(to)}"
            ) from None
        logger.info("SMS %s queued for %s", message.sid, mask_phone(to))
        return str(message.sid)

    async def close(self) -> None:
        await self.http_client.close()


def _split_body(text: str, limit: int = MAX_SMS_BODY) -> list[str]:
    """Splits only what Twilio would refuse (over 1,600 characters), at a space if possible."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class TwilioSmsOutput(OutputChannel):
    """Sends each bot response as one SMS.

    ``raise_on_error=True`` (proactive ``trigger_intent`` messages) lets a failure reach
    the caller. The webhook uses ``raise_on_error=False``: the patient's turn must still be
    saved and Twilio acknowledged when a reply can't be sent.
    """

    def __init__(self, sender: TwilioSmsSender, raise_on_error: bool = True) -> None:
        self.sender = sender
        self.raise_on_error = raise_on_error

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    async def _send(
        self, recipient_id: str, body: str | None = None, media_urls: list[str] | None = None
    ) -> None:
        try:
            await self.sender.send(recipient_id, body, media_urls)
        except TwilioSendError:
            if self.raise_on_error:
                raise
            # Already logged (masked) by the sender.

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        # One response is one SMS: no splitting on blank lines, unlike the stock channel.
        for part in _split_body(text.strip()):
            await self._send(recipient_id, part)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        # SMS has no buttons: list the choices inside the same message.
        lines = [text.strip()] if text else []
        lines.extend(
            f"{index}: {button.get('title', '')}" for index, button in enumerate(buttons, start=1)
        )
        await self.send_text_message(recipient_id, "\n".join(lines))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._send(recipient_id, None, [image])

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Accepts ``{"body" or "text": str, "media_url": str | [str]}`` as one message."""
        body = json_message.get("body", json_message.get("text"))
        media = json_message.get("media_url")
        media_urls = [media] if isinstance(media, str) else list(media or [])
        if body is None and not media_urls:
            logger.warning(
                "Ignoring a custom response for %s with neither body nor media_url",
                mask_phone(recipient_id),
            )
            return
        await self._send(recipient_id, body, media_urls or None)


# ------------------------------------------------------------------------- input


def _text_response(text: str, status: int) -> HTTPResponse:
    return response.text(text, status=status)


def _twiml_ack() -> HTTPResponse:
    return response.text(EMPTY_TWIML, status=200, content_type="text/xml")


def _neutralise_intent_prefix(text: str) -> str:
    """Rasa reads text starting with "/" as an intent with entities (``/EXTERNAL_offer{...}``).

    A patient must never be able to inject intents, so leading slashes are dropped.
    """
    cleaned = text.strip()
    while cleaned.startswith("/"):
        cleaned = cleaned[1:].lstrip()
    return cleaned


class TwilioSmsInput(InputChannel):
    """Twilio SMS webhook with signature validation, dedup and input checks."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        settings = TwilioSmsSettings(
            account_sid=_setting(credentials, ("account_sid",), "TWILIO_ACCOUNT_SID") or "",
            auth_token=_setting(credentials, ("auth_token",), "TWILIO_AUTH_TOKEN") or "",
            from_number=_setting(
                credentials, ("twilio_number", "from_number"), "TWILIO_FROM_NUMBER"
            ),
            messaging_service_sid=_setting(
                credentials, ("messaging_service_sid",), "TWILIO_MESSAGING_SERVICE_SID"
            ),
            public_base_url=_setting(credentials, ("public_base_url",), "PUBLIC_BASE_URL"),
            api_base_url=_setting(credentials, ("api_base_url",), "TWILIO_API_BASE_URL"),
            database_url=_setting(credentials, ("database_url",), "DATABASE_URL"),
            media_only_reply=_setting(credentials, ("media_only_reply",), "TWILIO_MEDIA_ONLY_REPLY")
            or MEDIA_ONLY_REPLY,
        )
        return cls(settings)

    def __init__(
        self, settings: TwilioSmsSettings, dedup_store: InboundDedupStore | None = None
    ) -> None:
        if not settings.account_sid or not settings.auth_token:
            raise RasaException(
                "The twilio channel needs account_sid and auth_token "
                "(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)."
            )
        if not settings.from_number and not settings.messaging_service_sid:
            raise RasaException(
                "The twilio channel needs a sender: "
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID."
            )
        if not settings.public_base_url:
            logger.warning(
                "PUBLIC_BASE_URL is not set: signatures are checked against the URL this "
                "server sees, and no status callback URL is sent to Twilio."
            )
        self.settings = settings
        self.validator = RequestValidator(settings.auth_token)
        self.sender = TwilioSmsSender(settings)
        if dedup_store is not None:
            self.dedup_store: InboundDedupStore = dedup_store
        elif settings.database_url:
            self.dedup_store = PostgresInboundDedupStore(settings.database_url)
        else:
            logger.warning(
                "DATABASE_URL is not set: inbound MessageSids are deduplicated in memory, "
                "per process only."
            )
            self.dedup_store = MemoryInboundDedupStore()

    def get_output_channel(self) -> OutputChannel:
        return TwilioSmsOutput(self.sender, raise_on_error=True)

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public origin, not the one this server listens on."""
        if not self.settings.public_base_url:
            return request.url
        query = f"?{request.query_string}" if request.query_string else ""
        return self.settings.public_base_url.rstrip("/") + request.path + query

    def is_signature_valid(self, request: Request, params: FormParams) -> bool:
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return False
        try:
            return bool(self.validator.validate(self.signed_url(request), params, signature))
        except Exception:  # a malformed header must be a 403, never a 500
            return False

    async def _run_blocking(self, function: Callable[[str], Any], message_sid: str) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, message_sid)

    async def _claim(self, message_sid: str) -> bool:
        try:
            return bool(await self._run_blocking(self.dedup_store.claim, message_sid))
        except Exception as error:
            # Fail open: answering the patient matters more than dedup, and the backend's
            # reply API ignores a repeated message_id anyway.
            logger.error(
                "Dedup store unavailable (%s); processing %s without dedup",
                type(error).__name__,
                message_sid,
            )
            return True

    async def _release(self, message_sid: str) -> None:
        try:
            await self._run_blocking(self.dedup_store.release, message_sid)
        except Exception as error:
            logger.error(
                "Could not release %s in the dedup store: %s", message_sid, type(error).__name__
            )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        twilio_webhook = Blueprint("twilio_sms_webhook", __name__)

        @twilio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @twilio_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            return await self.handle_webhook(request, on_new_message)

        @twilio_webhook.listener("after_server_stop")
        async def close_sender(*_: Any) -> None:
            await self.sender.close()

        return twilio_webhook

    async def handle_webhook(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        params = FormParams.parse(request.body or b"")
        if not self.is_signature_valid(request, params):
            logger.warning("Rejected a Twilio webhook with a missing or invalid signature")
            return _text_response("invalid signature", 403)

        sender = params.first("From")
        body = params.first("Body")
        message_sid = params.first("MessageSid")
        try:
            num_media = int(params.first("NumMedia") or "0")
        except ValueError:
            return _text_response("invalid NumMedia", 400)

        if not sender:
            return _text_response("missing From", 400)
        if not is_e164(sender):
            logger.warning("Rejected a webhook whose From is not E.164: %s", mask_phone(sender))
            return _text_response("From must be an E.164 phone number", 400)
        has_text = bool(body and body.strip())
        if not has_text and num_media <= 0:
            return _text_response("missing Body", 400)
        if not message_sid or not MESSAGE_SID_PATTERN.match(message_sid):
            return _text_response("missing or invalid MessageSid", 400)

        if not await self._claim(message_sid):
            logger.info(
                "Duplicate delivery of %s from %s acknowledged", message_sid, mask_phone(sender)
            )
            return _twiml_ack()

        text = _neutralise_intent_prefix(body or "")
        # The inbound output channel logs send failures instead of raising (see class doc).
        out_channel = TwilioSmsOutput(self.sender, raise_on_error=False)
        if not text:
            logger.info(
                "Media-only message %s from %s: asking for text", message_sid, mask_phone(sender)
            )
            await out_channel.send_text_message(sender, self.settings.media_only_reply)
            return _twiml_ack()

        # "¡" stands for "@" in the GSM alphabet and some carriers deliver it that way.
        text = text.replace("¡", "@")
        user_message = UserMessage(
            text=text,
            output_channel=out_channel,
            sender_id=sender,
            input_channel=self.name(),
            message_id=message_sid,
            metadata={
                "twilio": {
                    "message_sid": message_sid,
                    "to": params.first("To"),
                    "num_media": num_media,
                    "num_segments": params.first("NumSegments"),
                }
            },
        )
        logger.info("Inbound SMS %s from %s", message_sid, mask_phone(sender))
        try:
            await on_new_message(user_message)
        except Exception as error:
            # Forget the sid so that Twilio's retry of this delivery is processed.
            await self._release(message_sid)
            logger.error(
                "Failed to process %s from %s: %s",
                message_sid,
                mask_phone(sender),
                type(error).__name__,
            )
            logger.debug("Processing failure detail", exc_info=True)
            return _text_response("processing failed", 500)
        return _twiml_ack()
