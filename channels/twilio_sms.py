"""Secure Twilio SMS channel for Rasa 3.6.

Replaces Rasa's stock ``twilio`` channel, which validates no signature, blocks the event
loop on every send, swallows send errors and answers 500 to a message without a Body.

Inbound (``POST /webhooks/twilio/webhook``):
- ``X-Twilio-Signature`` is checked against ``PUBLIC_BASE_URL`` + path + query, because
  in production a reverse proxy forwards the public URL Twilio signed to this server.
- Bodies over 64 KB are refused (413) before anything else is read.
- Each text goes into the inbox (channels/inbox.py) first: a redelivered ``MessageSid`` is
  dropped there, and a turn that could not be applied (action server or backend down, a
  reply that could not leave) is run again until it is, in arrival order per phone.
- Replies go out through the REST API, never TwiML, so the webhook answers empty TwiML.

Outbound: ``messages.create_async`` through one shared aiohttp session. A proactive text
started by the backend carries a ``ref`` (``trigger_intent?...&ref=outbox-12``): it is sent
once whatever the retries (channels/send_ledger.py), and its ``StatusCallback`` URL carries
the ref, so the delivery report names the exact message. A send error raises
``TwilioSendError`` saying whether it is permanent (Twilio refused this number) or transient,
so that ``trigger_intent`` answers 500 and the backend knows which.

Logs mask phone numbers and never contain message bodies.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError, ClientSession
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from channels.inbox import InboundText, Inbox, MemoryInbox, PostgresInbox, retry_delay
from channels.send_ledger import (
    MemorySendLedger,
    PostgresSendLedger,
    SendLedger,
    body_digest,
)
from sms_common.phones import is_e164, mask_phone, mask_phones_in_text
from sms_common.twilio_signature import FormParams, signature_is_valid, signed_url

logger = logging.getLogger(__name__)

CHANNEL_NAME = "twilio"
# Twilio SIDs are two letters + 32 hex; accept any short alphanumeric id to stay lenient.
MESSAGE_SID_PATTERN = re.compile(r"^[A-Za-z0-9]{2,64}$")
TWILIO_API_ORIGIN = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Turns the channel itself starts (a patient can never send these: a leading "/" is dropped
# from their text). The wording of the answers lives in domain.yml, in both languages.
MEDIA_ONLY_TURN = "/EXTERNAL_media_only"
# Twilio's Advanced Opt-Out already answered these keywords (the webhook's OptOutType): record
# the opt-out or opt-in, answer nothing more; HELP changes nothing, so there is no turn at all.
CARRIER_ANSWERED_TURNS = {"STOP": "/EXTERNAL_twilio_opt_out", "START": "/EXTERNAL_twilio_opt_in"}
# Twilio rejects bodies over 1,600 characters (error 21617).
MAX_SMS_BODY = 1600
DEFAULT_SEND_TIMEOUT = 15.0
# Twilio's webhooks are a few kilobytes at most; anything near this is not Twilio.
MAX_WEBHOOK_BODY = 64 * 1024
# How often texts left unapplied (a part was down) are looked at again.
INBOX_POLL_SECONDS = 5.0
# Twilio waits 15 s for a webhook's answer; a longer turn finishes after the answer.
WEBHOOK_ANSWER_WITHIN = 10.0
# Twilio errors about the recipient's number: this text can never go to it, so the offer fails.
# Anything else (5xx, 429, our account or sender, a timeout) is transient: retried, never a failure.
PER_NUMBER_ERRORS = frozenset({21211, 21214, 21217, 21407, 21408, 21610, 21612, 21614, 21635})
REF_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
BACKEND_DOWN_RESPONSE = "utter_backend_down"

# The ref of the proactive text being started by the current trigger_intent request.
_OUTBOUND_REF: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "outbound_ref", default=None
)

# twilio's HTTP client logs every request's URL and headers at INFO; keep that at WARNING
# unless logging is configured otherwise for this logger.
_twilio_http_logger = logging.getLogger(f"{__name__}.http")
_twilio_http_logger.setLevel(logging.WARNING)


# --------------------------------------------------------------------------- helpers


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


def normalise_database_url(url: str) -> str:
    """Points a ``postgres[ql][+driver]://`` URL at psycopg2, the driver of Rasa's venv."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator or scheme.split("+", 1)[0].lower() not in ("postgres", "postgresql"):
        # Don't echo the URL: it usually carries a password.
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+psycopg2://{rest}"


# ------------------------------------------------------------------------ sending


class TwilioSendError(RasaException):
    """An SMS could not be handed to Twilio. The message names no number and no body.

    Its text starts ``twilio-send-error kind=permanent|transient [code=N]``: trigger_intent puts
    it in its 500 answer, and the backend reads the kind from there (adapters/messenger.py).
    """

    def __init__(self, permanent: bool, detail: str, code: int | None = None) -> None:
        self.permanent, self.code = permanent, code
        kind = "permanent" if permanent else "transient"
        prefix = f"twilio-send-error kind={kind}" + (f" code={code}" if code else "")
        super().__init__(f"{prefix}: {detail}")


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
    send_timeout: float = DEFAULT_SEND_TIMEOUT

    @property
    def status_callback_url(self) -> str | None:
        if not self.public_base_url:
            return None
        return self.public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


class TwilioSmsSender:
    """One Twilio REST client and one HTTP session for the whole process."""

    def __init__(self, settings: TwilioSmsSettings, ledger: SendLedger | None = None) -> None:
        self.settings = settings
        self.ledger: SendLedger = ledger or MemorySendLedger()
        self.http_client = RewritingAsyncTwilioHttpClient(
            settings.api_base_url, settings.send_timeout
        )
        self.client = Client(
            settings.account_sid, settings.auth_token, http_client=self.http_client
        )

    async def _ledger(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def send(
        self,
        to: str,
        body: str | None = None,
        media_urls: list[str] | None = None,
        ref: str | None = None,
    ) -> str:
        """Queues one SMS/MMS at Twilio and returns its sid; raises TwilioSendError.

        With a `ref`, the text is sent once however often this is called (see send_ledger.py).
        """
        if not is_e164(to):
            raise TwilioSendError(True, f"refusing a non-E.164 recipient {mask_phone(to)}")
        if ref is None:
            return await self._create(to, body, media_urls, None)
        text = body or " ".join(media_urls or [])
        try:
            earlier = await self._ledger(self.ledger.begin, ref, to, text)
        except Exception as error:
            # without the ledger a retry could text the patient twice: wait for it instead
            logger.error("Send ledger unavailable (%s); %s not sent yet", type(error).__name__, ref)
            raise TwilioSendError(False, "send ledger unavailable") from None
        if earlier is not None:
            sid = await self._settle_earlier_attempt(earlier, to, text)
            if sid is not None:
                return sid
        return await self._create(to, body, media_urls, ref)

    async def _settle_earlier_attempt(self, earlier: Any, to: str, text: str) -> str | None:
        """An earlier attempt with this ref exists. Returns its sid when the text already left;
        None when this attempt now owns the send; raises when it must wait or never send."""
        if earlier.status == "sent":
            logger.info("%s was already sent as %s; not sending again", earlier.ref, earlier.message_sid)
            return str(earlier.message_sid)
        if earlier.status == "failed":
            code = int(earlier.error_code) if (earlier.error_code or "").isdigit() else None
            raise TwilioSendError(True, "Twilio refused this number before", code)
        if not earlier.is_stale(datetime.now(timezone.utc)):
            raise TwilioSendError(False, "another attempt is sending this text right now")
        # An attempt died between Twilio and the ledger: ask Twilio before sending again.
        sid = await self._find_sent(to, text, since=earlier.created_at)
        if sid is not None:
            await self._ledger(self.ledger.sent, earlier.ref, sid)
            logger.warning("%s was found at Twilio as %s; not sending again", earlier.ref, sid)
            return sid
        if not await self._ledger(self.ledger.take_over, earlier):
            raise TwilioSendError(False, "another attempt took this text over")
        return None

    async def _find_sent(self, to: str, text: str, since: datetime) -> str | None:
        """The sid of a message with this body sent to `to` since `since`, per Twilio's API."""
        try:
            # no DateSent filter: a text Twilio has queued but not sent yet has no date_sent
            messages = await self.client.messages.list_async(to=to, limit=50)
        except Exception as error:
            raise TwilioSendError(
                False, f"could not ask Twilio whether it was sent ({type(error).__name__})"
            ) from None
        digest = body_digest(text)
        for message in messages:
            created = message.date_created
            recent = created is None or created >= since - timedelta(minutes=1)
            if recent and message.body is not None and body_digest(message.body) == digest:
                return str(message.sid)
        return None

    async def _create(
        self, to: str, body: str | None, media_urls: list[str] | None, ref: str | None
    ) -> str:
        kwargs: dict[str, Any] = {"to": to}
        if body is not None:
            kwargs["body"] = body
        if media_urls:
            kwargs["media_url"] = media_urls
        if self.settings.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            kwargs["from_"] = self.settings.from_number
        callback = self.settings.status_callback_url
        if callback:
            # the report then names the exact message, never just the phone number
            kwargs["status_callback"] = callback + (f"?ref={quote(ref, safe='')}" if ref else "")
        try:
            message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as error:
            detail = mask_phones_in_text(str(error.msg or ""))
            code = error.code if isinstance(error.code, int) else None
            permanent = code in PER_NUMBER_ERRORS
            logger.error(
                "Twilio refused an SMS to %s: HTTP %s, code %s, %s",
                mask_phone(to),
                error.status,
                error.code,
                detail,
            )
            if ref is not None:
                # Twilio answered, so it surely did not take the text: a retry may send it
                try:
                    if permanent:
                        await self._ledger(self.ledger.failed, ref, str(code))
                    else:
                        await self._ledger(self.ledger.forget, ref)
                except Exception as ledger_error:  # a stale row is reconciled by the retry
                    logger.error("Could not update %s: %s", ref, type(ledger_error).__name__)
            raise TwilioSendError(
                permanent, f"Twilio refused an SMS (HTTP {error.status})", code
            ) from None
        except (ClientError, asyncio.TimeoutError, OSError, TwilioException) as error:
            # In doubt: Twilio may have taken it. The ledger row stays `sending`, so a retry
            # asks Twilio before sending again.
            logger.error(
                "Could not reach Twilio to send an SMS to %s: %s",
                mask_phone(to),
                type(error).__name__,
            )
            raise TwilioSendError(False, f"could not reach Twilio ({type(error).__name__})") from None
        if ref is not None:
            try:
                await self._ledger(self.ledger.sent, ref, str(message.sid))
            except Exception as error:  # the text left; a stale row is reconciled later
                logger.error("Could not record %s as sent: %s", ref, type(error).__name__)
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


@dataclass
class TurnReport:
    """What went wrong in one inbound turn, so that the inbox runs it again."""

    attempt: int = 1
    action_failed: bool = False
    backend_unavailable: bool = False
    reply_not_sent: bool = False
    crashed: str | None = None

    def problem(self) -> str | None:
        if self.crashed:
            return f"turn raised {self.crashed}"
        if self.action_failed:
            return "an action failed (action server down?)"
        if self.backend_unavailable:
            return "the backend was unavailable"
        if self.reply_not_sent:
            return "a reply could not be sent"
        return None


# The inbound turn being run by this task; Rasa's processor reports a failed custom action only in
# its log ("Bot will continue, but the actions events are lost"), so a log filter marks the turn.
_CURRENT_TURN: contextvars.ContextVar[TurnReport | None] = contextvars.ContextVar(
    "current_turn", default=None
)


class _FailedActionWatch(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        turn = _CURRENT_TURN.get()
        if turn is not None and str(record.msg).startswith(
            "Encountered an exception while running action"
        ):
            turn.action_failed = True
        return True


_FAILED_ACTION_WATCH = _FailedActionWatch()


def watch_failed_actions() -> None:
    processor_logger = logging.getLogger("rasa.core.processor")
    if _FAILED_ACTION_WATCH not in processor_logger.filters:
        processor_logger.addFilter(_FAILED_ACTION_WATCH)


class TwilioSmsOutput(OutputChannel):
    """Sends each bot response as one SMS.

    ``raise_on_error=True`` (proactive ``trigger_intent`` messages) lets a failure reach the
    caller; ``ref`` names the proactive text (one per response part). The webhook uses
    ``raise_on_error=False`` with a ``turn`` report: the inbox runs the turn again instead.
    """

    def __init__(
        self,
        sender: TwilioSmsSender,
        raise_on_error: bool = True,
        ref: str | None = None,
        turn: TurnReport | None = None,
    ) -> None:
        self.sender = sender
        self.raise_on_error = raise_on_error
        self.ref = ref
        self.turn = turn
        self._parts = 0

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    def _next_ref(self) -> str | None:
        if self.ref is None:
            return None
        self._parts += 1
        return self.ref if self._parts == 1 else f"{self.ref}#{self._parts}"

    async def _send(
        self,
        recipient_id: str,
        body: str | None = None,
        media_urls: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.turn is not None and kwargs.get("utter_action") == BACKEND_DOWN_RESPONSE:
            self.turn.backend_unavailable = True
            if self.turn.attempt > 1:
                return  # they were told once; the retry answers for real when it can
        try:
            await self.sender.send(recipient_id, body, media_urls, ref=self._next_ref())
        except TwilioSendError as error:
            if self.raise_on_error:
                raise
            # Already logged (masked) by the sender; a transient failure means a retry.
            if self.turn is not None and not error.permanent:
                self.turn.reply_not_sent = True

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        # One response is one SMS: no splitting on blank lines, unlike the stock channel.
        for part in _split_body(text.strip()):
            await self._send(recipient_id, part, **kwargs)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        # SMS has no buttons: list the choices inside the same message.
        lines = [text.strip()] if text else []
        lines.extend(
            f"{index}: {button.get('title', '')}" for index, button in enumerate(buttons, start=1)
        )
        await self.send_text_message(recipient_id, "\n".join(lines), **kwargs)

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
        )
        return cls(settings)

    def __init__(
        self,
        settings: TwilioSmsSettings,
        inbox: Inbox | None = None,
        ledger: SendLedger | None = None,
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
        if settings.database_url:
            url = normalise_database_url(settings.database_url)
            inbox = inbox or PostgresInbox(url)
            ledger = ledger or PostgresSendLedger(url)
        elif inbox is None or ledger is None:
            logger.warning(
                "DATABASE_URL is not set: the inbox and the send ledger live in this process's "
                "memory (not shared by replicas, lost on restart)."
            )
        self.inbox: Inbox = inbox or MemoryInbox()
        self.sender = TwilioSmsSender(settings, ledger or MemorySendLedger())
        self._retry_task: asyncio.Task[None] | None = None
        self._turns: set[asyncio.Future[None]] = set()
        watch_failed_actions()

    def get_output_channel(self) -> OutputChannel:
        # a proactive text from the backend: its ref was taken from the trigger_intent URL
        return TwilioSmsOutput(self.sender, raise_on_error=True, ref=_OUTBOUND_REF.get())

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public origin, not the one this server listens on."""
        if not self.settings.public_base_url:
            return request.url
        return signed_url(self.settings.public_base_url, request.path, request.query_string)

    def is_signature_valid(self, request: Request, params: FormParams) -> bool:
        signature = request.headers.get("X-Twilio-Signature")
        return signature_is_valid(self.settings.auth_token, self.signed_url(request), params, signature)

    async def _blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        twilio_webhook = Blueprint("twilio_sms_webhook", __name__)

        @twilio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @twilio_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            return await self.handle_webhook(request, on_new_message)

        @twilio_webhook.listener("before_server_start")
        async def remember_refs(app: Any, *_: Any) -> None:
            # app-wide, so that it sees Rasa's own trigger_intent route
            app.register_middleware(_remember_outbound_ref, "request")

        @twilio_webhook.listener("after_server_start")
        async def start_retries(app: Any, *_: Any) -> None:
            self._retry_task = asyncio.ensure_future(self.retry_forever(on_new_message))

        @twilio_webhook.listener("before_server_stop")
        async def stop_retries(*_: Any) -> None:
            if self._retry_task is not None:
                self._retry_task.cancel()

        @twilio_webhook.listener("after_server_stop")
        async def close_sender(*_: Any) -> None:
            await self.sender.close()

        return twilio_webhook

    async def handle_webhook(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        if len(request.body or b"") > MAX_WEBHOOK_BODY:
            return _text_response("request body too large", 413)
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

        opt_out_type = (params.first("OptOutType") or "").strip().upper()
        if opt_out_type:
            if opt_out_type not in CARRIER_ANSWERED_TURNS:
                logger.info("%s: Twilio answered %s itself", message_sid, opt_out_type)
                return _twiml_ack()
            text = CARRIER_ANSWERED_TURNS[opt_out_type]
        elif not has_text:
            text = MEDIA_ONLY_TURN
        else:
            # the patient's own words, as written ("¡Sí!" stays "¡Sí!")
            text = _neutralise_intent_prefix(body or "") or MEDIA_ONLY_TURN
        inbound = InboundText(message_sid, sender, text, num_media)
        try:
            is_new = await self._blocking(self.inbox.receive, inbound)
        except Exception as error:
            # Fail open: answering the patient matters more than the inbox, and the backend's
            # reply API ignores a repeated message id anyway.
            logger.error(
                "Inbox unavailable (%s); processing %s without it", type(error).__name__, message_sid
            )
            await self.run_turn(inbound, on_new_message)
            return _twiml_ack()
        if not is_new:
            logger.info(
                "Duplicate delivery of %s from %s acknowledged", message_sid, mask_phone(sender)
            )
            return _twiml_ack()
        logger.info("Inbound SMS %s from %s", message_sid, mask_phone(sender))
        # Stored before anything else: even when the turn could not be applied yet, Twilio's
        # job is done, and the inbox runs the turn again when the parts are back. A slow turn
        # (an action retrying a busy backend) goes on after Twilio's answer: Twilio gives up
        # on a webhook after 15 s.
        turn = asyncio.ensure_future(self.drain(sender, on_new_message))
        self._turns.add(turn)
        turn.add_done_callback(self._turns.discard)
        try:
            await asyncio.wait_for(asyncio.shield(turn), timeout=WEBHOOK_ANSWER_WITHIN)
        except asyncio.TimeoutError:
            logger.info("%s is still being worked on; acknowledged to Twilio", message_sid)
        return _twiml_ack()

    async def drain(
        self, phone: str, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """Run this phone's unfinished texts in arrival order; stop at the first that fails."""
        while True:
            try:
                text = await self._blocking(self.inbox.take_next, phone)
            except Exception as error:
                logger.error("Inbox unavailable (%s); will retry", type(error).__name__)
                return
            if text is None:
                return
            problem = (await self.run_turn(text, on_new_message)).problem()
            try:
                if problem is None:
                    await self._blocking(self.inbox.finish, text.message_sid)
                    continue
                retrying = await self._blocking(self.inbox.retry_later, text.message_sid, problem)
            except Exception as error:
                logger.error("Inbox unavailable (%s); the lease will run out", type(error).__name__)
                return
            if retrying:
                logger.warning(
                    "%s from %s not applied (%s, attempt %s); again in %s s",
                    text.message_sid,
                    mask_phone(phone),
                    problem,
                    text.attempts,
                    int(retry_delay(text.attempts).total_seconds()),
                )
            else:
                logger.error("%s from %s given up: %s", text.message_sid, mask_phone(phone), problem)
            return  # later texts of this phone wait behind this one

    async def run_turn(
        self, text: InboundText, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> TurnReport:
        report = TurnReport(attempt=max(1, text.attempts))
        out_channel = TwilioSmsOutput(self.sender, raise_on_error=False, turn=report)
        user_message = UserMessage(
            text=text.body or MEDIA_ONLY_TURN,
            output_channel=out_channel,
            sender_id=text.phone,
            input_channel=self.name(),
            message_id=text.message_sid,
            metadata={
                "twilio": {
                    "message_sid": text.message_sid,
                    "num_media": text.num_media,
                    "attempt": report.attempt,
                }
            },
        )
        token = _CURRENT_TURN.set(report)
        try:
            await on_new_message(user_message)
        except Exception as error:
            report.crashed = type(error).__name__
            logger.debug("Processing failure detail", exc_info=True)
        finally:
            _CURRENT_TURN.reset(token)
        return report

    async def retry_forever(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """Texts left unapplied (a part was down, or a server died mid-turn) run again."""
        while True:
            await asyncio.sleep(INBOX_POLL_SECONDS)
            try:
                phones = await self._blocking(self.inbox.phones_due)
                for phone in phones:
                    await self.drain(phone, on_new_message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the next round tries again
                logger.error("Inbox retry round failed: %s", type(error).__name__)


def _remember_outbound_ref(request: Request) -> None:
    """trigger_intent?...&ref=outbox-12: the proactive text's name, for get_output_channel()."""
    ref = request.args.get("ref") if request.path.endswith("/trigger_intent") else None
    # fullmatch: `$` also matches before a final newline, and "outbox-12\n" is another ledger key
    _OUTBOUND_REF.set(ref if ref and REF_PATTERN.fullmatch(ref) else None)
