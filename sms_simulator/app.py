"""Twilio-compatible SMS simulator: the Messages REST API, signed webhooks, a phone page.

- ``/2010-04-01/Accounts/{AccountSid}/Messages[.json|/{Sid}.json]``: Twilio's Messages API
  (basic auth, Twilio's JSON and error shapes), followed by signed status callbacks.
- ``/simulator/...``: JSON API for tests and the phone page: messages, patient texts sent
  to Rasa as signed Twilio webhooks, fault injection, reset.
- ``/``: a phone-like page to play a patient.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import mimetypes
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Coroutine
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, empty, html, json
from twilio.request_validator import RequestValidator

from .settings import Settings
from .store import (
    DEFAULT_DELIVERY_ERROR,
    FAULT_KINDS,
    SEND_FAULTS,
    Fault,
    SimMessage,
    SimulatorStore,
    utcnow,
)
from .twilio_format import (
    API_VERSION,
    TwilioApiError,
    count_segments,
    is_e164,
    mask_phone,
    new_sid,
    validate_create_form,
)

logger = logging.getLogger("sms_simulator")

PHONE_PAGE = Path(__file__).with_name("static") / "phone.html"
TWILIO_USER_AGENT = "TwilioProxy/1.1"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def parse_form(request: Request) -> dict[str, list[str]]:
    """Form fields with blank values kept (``Body=`` must not vanish)."""
    return parse_qs((request.body or b"").decode("utf-8", errors="replace"), keep_blank_values=True)


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _query_number(request: Request, name: str) -> str | None:
    """A phone number from the query string; an unencoded "+" arrives as a space."""
    value = request.args.get(name)
    if not value:
        return None
    stripped = value.strip()
    if value.startswith(" ") and stripped.isdigit():
        return "+" + stripped
    return stripped


def _bad_request(message: str, field: str) -> HTTPResponse:
    return json({"error": message, "field": field}, status=400)


def _parse_date_filter(value: str) -> date | None:
    """Twilio accepts YYYY-MM-DD or a full timestamp for DateSent filters."""
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


# Twilio's Advanced Opt-Out (default keyword lists and answers). With it on, Twilio answers these
# single-word messages itself and tells the webhook with OptOutType.
ADVANCED_OPT_OUT = {
    "STOP": (
        ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"),
        "You have successfully been unsubscribed. You will not receive any more messages from "
        "this number. Reply START to resubscribe.",
    ),
    "START": (
        ("start", "unstop", "yes"),
        "You have successfully been re-subscribed to messages from this number. Reply HELP for "
        "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    ),
    "HELP": (("help", "info"), "Reply STOP to unsubscribe. Msg&Data Rates May Apply."),
}


def advanced_opt_out_type(body: str) -> str | None:
    word = body.strip().strip(".!?* ").casefold()
    for kind, (words, _) in ADVANCED_OPT_OUT.items():
        if word in words:
            return kind
    return None


def twiml_messages(document: str) -> list[str]:
    """Bodies of <Message> verbs in a TwiML answer (Twilio sends them as replies)."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        return []
    if root.tag != "Response":
        return []
    bodies = []
    for verb in root.iter("Message"):
        body_element = verb.find("Body")
        text = body_element.text if body_element is not None else verb.text
        if text and text.strip():
            bodies.append(text.strip())
    return bodies


class Simulator:
    """State and behaviour behind the routes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SimulatorStore()
        self.validator = RequestValidator(settings.auth_token)
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        # Twilio's Advanced Opt-Out: on or off (a Messaging Service setting), and who sent STOP
        self.advanced_opt_out = settings.advanced_opt_out
        self.opted_out: set[str] = set()

    # -- lifecycle

    async def start(self) -> None:
        self.http = httpx.AsyncClient(timeout=10.0)

    async def stop(self) -> None:
        self.cancel_tasks()
        if self.http is not None:
            await self.http.aclose()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()

    def opt_out_type(self, message: SimMessage) -> str | None:
        """With Advanced Opt-Out on, the keyword this text is (Twilio answers it itself).

        START (and YES) only count as a keyword from a number that opted out, as with Twilio."""
        if not self.advanced_opt_out or message.from_ is None:
            return None
        kind = advanced_opt_out_type(message.body)
        if kind == "START" and message.from_ not in self.opted_out:
            return None
        return kind

    def reset(self) -> None:
        self.cancel_tasks()
        self.store.reset()
        self.opted_out.clear()
        self.advanced_opt_out = self.settings.advanced_opt_out

    @property
    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError("the simulator has not started")
        return self.http

    # -- REST API

    def check_auth(self, request: Request, account_sid: str) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise TwilioApiError(401, 20003, "Authenticate")
        try:
            username, _, password = (
                base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise TwilioApiError(401, 20003, "Authenticate") from None
        valid_user = hmac.compare_digest(username.encode(), self.settings.account_sid.encode())
        valid_password = hmac.compare_digest(password.encode(), self.settings.auth_token.encode())
        if not (valid_user and valid_password):
            raise TwilioApiError(401, 20003, "Authenticate")
        if account_sid != self.settings.account_sid:
            raise TwilioApiError(404, 20404, f"The requested resource {request.path} was not found")

    def create_message(self, form: dict[str, list[str]]) -> tuple[SimMessage, float]:
        """The created message, and how long to wait before answering (a slow Twilio)."""
        validate_create_form(form)
        to = _first(form, "To")
        fault = self.store.take_fault(to, SEND_FAULTS)
        if fault is not None and fault.kind == "http_500":
            logger.info("Injected HTTP 500 for a send to %s", mask_phone(to))
            raise TwilioApiError(500, 20500, "An internal server error has occurred")
        if fault is not None and fault.kind == "http_429":
            logger.info("Injected HTTP 429 for a send to %s", mask_phone(to))
            raise TwilioApiError(429, 20429, "Too Many Requests")
        unsubscribed = self.advanced_opt_out and to in self.opted_out
        if unsubscribed or (fault is not None and fault.kind == "unsubscribed"):
            logger.info("21610 for a send to %s", mask_phone(to))
            raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
        if fault is not None and fault.kind == "invalid":
            logger.info("Injected 21211 for a send to %s", mask_phone(to))
            raise TwilioApiError(400, 21211, "The 'To' number is not a valid phone number.")
        delay = fault.delay_seconds if fault is not None and fault.kind == "slow" else 0.0
        delivery_fault = self.store.take_fault(
            to, ("undelivered", "failed", "duplicate_callbacks", "out_of_order_callbacks")
        )

        media_urls = [url for url in form.get("MediaUrl", []) if url]
        body = _first(form, "Body")
        message = self.store.add(
            SimMessage(
                sid=new_sid("MM" if media_urls else "SM"),
                account_sid=self.settings.account_sid,
                direction="outbound-api",
                to=to,
                # With a Messaging Service Twilio picks the sender later; "from" is null until then.
                from_=_first(form, "From") or None,
                body=body,
                status="queued",
                seq=self.store.next_seq(),
                messaging_service_sid=_first(form, "MessagingServiceSid") or None,
                media_urls=media_urls,
                num_segments=count_segments(body),
                status_callback=_first(form, "StatusCallback") or None,
            )
        )
        logger.info("Accepted %s for %s", message.sid, mask_phone(to))
        self.spawn(self.progress(message, delivery_fault))
        return message, delay

    async def progress(self, message: SimMessage, fault: Fault | None) -> None:
        """Moves a message through its statuses, calling its StatusCallback at each step."""
        error_code = (fault.error_code or DEFAULT_DELIVERY_ERROR) if fault is not None else None
        if fault is not None and fault.kind == "failed":
            steps: list[tuple[str, int | None]] = [("queued", None), ("failed", error_code)]
        elif fault is not None and fault.kind == "undelivered":
            steps = [("queued", None), ("sent", None), ("undelivered", error_code)]
        else:
            steps = [("queued", None), ("sent", None), ("delivered", None)]
        reports: list[dict[str, str]] = []
        for index, (status, code) in enumerate(steps):
            if index:
                await asyncio.sleep(self.settings.status_delay)
            if self.store.get(message.sid) is not message:
                return  # deleted or reset meanwhile
            if status != "queued":
                message.set_status(status, code)
            if status == "sent" and message.from_ is None:
                message.from_ = self.settings.from_number
            reports.append(self.status_params(message))
            if message.status_callback and not (fault and fault.kind == "out_of_order_callbacks"):
                await self.send_status_callback(message.status_callback, reports[-1])
                if fault is not None and fault.kind == "duplicate_callbacks":
                    await self.send_status_callback(message.status_callback, reports[-1])
        message.reports = reports
        if message.status_callback and fault is not None and fault.kind == "out_of_order_callbacks":
            for params in reversed(reports):
                await self.send_status_callback(message.status_callback, params)

    def status_params(self, message: SimMessage) -> dict[str, str]:
        params = {
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "MessageStatus": message.status,
            "To": message.to,
            "From": message.from_ or self.settings.from_number,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        return params

    async def send_status_callback(self, url: str, params: dict[str, str]) -> None:
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": TWILIO_USER_AGENT,
        }
        status, sid = params["MessageStatus"], params["MessageSid"]
        try:
            answer = await self.client.post(url, data=params, headers=headers)
        except httpx.HTTPError as error:
            # Twilio doesn't retry status callbacks either; the next status still goes out.
            logger.warning(
                "Status callback %s for %s failed: %s", status, sid, type(error).__name__
            )
            return
        if answer.status_code >= 400:
            logger.warning(
                "Status callback %s for %s answered HTTP %s", status, sid, answer.status_code
            )

    def list_page(self, request: Request, account_sid: str) -> dict[str, Any]:
        to = _query_number(request, "To")
        from_ = _query_number(request, "From")
        messages = self.store.filter(to=to, from_=from_)
        for name, keep in (
            ("DateSent", lambda sent, limit: sent == limit),
            ("DateSent<", lambda sent, limit: sent <= limit),
            ("DateSent>", lambda sent, limit: sent >= limit),
        ):
            raw = request.args.get(name)
            if raw is None:
                continue
            limit = _parse_date_filter(raw)
            if limit is None:
                raise TwilioApiError(400, 400, f"Invalid parameter '{name}': {raw}")
            messages = [
                message
                for message in messages
                if message.date_sent is not None and keep(message.date_sent.date(), limit)
            ]
        messages.reverse()  # Twilio lists newest first
        try:
            page_size = min(
                max(int(request.args.get("PageSize", DEFAULT_PAGE_SIZE)), 1), MAX_PAGE_SIZE
            )
            page = max(int(request.args.get("Page", 0)), 0)
        except ValueError:
            raise TwilioApiError(400, 400, "Invalid parameter 'PageSize' or 'Page'") from None
        start = page * page_size
        chunk = messages[start : start + page_size]
        base = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        filters = [(key, value) for key, value in (("To", to), ("From", from_)) if value] + [
            (key, request.args.get(key))
            for key in ("DateSent", "DateSent<", "DateSent>")
            if key in request.args
        ]

        def page_uri(number: int) -> str:
            return base + "?" + urlencode(filters + [("PageSize", page_size), ("Page", number)])

        has_next = start + page_size < len(messages)
        return {
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "messages": [message.to_resource() for message in chunk],
            "start": start,
            "uri": page_uri(page),
        }

    def update_message(self, message: SimMessage, form: dict[str, list[str]]) -> SimMessage:
        if "Body" in form:
            if _first(form, "Body") != "":
                # Twilio only allows redaction: the new Body must be empty.
                raise TwilioApiError(
                    400, 400, "Invalid parameter 'Body': only an empty Body (redaction) is allowed"
                )
            message.body = ""
        if "Status" in form:
            if _first(form, "Status") != "canceled":
                raise TwilioApiError(400, 400, "Invalid parameter 'Status'")
            if message.status not in ("scheduled", "accepted"):
                raise TwilioApiError(400, 30409, "Message cannot be canceled")
            message.set_status("canceled")
        message.date_updated = utcnow()
        return message

    # -- patients

    def webhook_signed_url(self) -> str:
        """The public URL Twilio would sign; the POST itself goes to the inbound URL."""
        target = urlsplit(self.settings.inbound_url)
        query = f"?{target.query}" if target.query else ""
        return self.settings.public_base_url.rstrip("/") + (target.path or "/") + query

    def inbound_params(self, message: SimMessage) -> dict[str, str]:
        """Form fields in the order and shape Twilio posts them for an incoming SMS."""
        from_us = message.from_ is not None and message.from_.startswith("+1")
        to_us = message.to.startswith("+1")
        params = {
            "ToCountry": "US" if to_us else "",
            "ToState": "",
            "SmsMessageSid": message.sid,
            "NumMedia": str(len(message.media_urls)),
            "ToCity": "",
            "FromZip": "",
            "SmsSid": message.sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": message.body,
            "FromCountry": "US" if from_us else "",
            "To": message.to,
            "ToZip": "",
            "NumSegments": str(message.num_segments),
            "ReferralNumMedia": "0",
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "ApiVersion": API_VERSION,
        }
        if self.settings.messaging_service_sid:
            params["MessagingServiceSid"] = self.settings.messaging_service_sid
        opt_out_type = self.opt_out_type(message)
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        for index, url in enumerate(message.media_urls):
            params[f"MediaUrl{index}"] = url
            params[f"MediaContentType{index}"] = mimetypes.guess_type(url)[0] or "image/jpeg"
        return params

    async def deliver_inbound(self, message: SimMessage, forge_signature: bool) -> dict[str, Any]:
        params = self.inbound_params(message)
        opt_out_type = params.get("OptOutType")
        if opt_out_type and message.from_ and not forge_signature:
            # Twilio answers the keyword itself, then still tells the webhook
            if opt_out_type == "STOP":
                self.opted_out.add(message.from_)
            elif opt_out_type == "START":
                self.opted_out.discard(message.from_)
            self.add_twiml_reply(message, ADVANCED_OPT_OUT[opt_out_type][1])
        signed_url = self.webhook_signed_url()
        token = (
            self.settings.auth_token
            if not forge_signature
            else "forged-" + self.settings.auth_token
        )
        headers = {
            "X-Twilio-Signature": RequestValidator(token).compute_signature(signed_url, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": TWILIO_USER_AGENT,
        }
        result: dict[str, Any] = {
            "message_sid": message.sid,
            "signed_url": signed_url,
            "forged_signature": forge_signature,
        }
        try:
            answer = await self.client.post(
                self.settings.inbound_url,
                data=params,
                headers=headers,
                timeout=self.settings.webhook_timeout,
            )
        except httpx.HTTPError as error:
            logger.warning("Inbound webhook for %s failed: %s", message.sid, type(error).__name__)
            message.webhook_status = None
            return {**result, "status": None, "error": type(error).__name__}
        message.webhook_status = answer.status_code
        logger.info(
            "Delivered %s from %s to the webhook: HTTP %s",
            message.sid,
            mask_phone(message.from_),
            answer.status_code,
        )
        replies = []
        if answer.status_code == 200 and "xml" in answer.headers.get("content-type", ""):
            for body in twiml_messages(answer.text):
                replies.append(self.add_twiml_reply(message, body).sid)
        return {**result, "status": answer.status_code, "twiml_replies": replies}

    def add_twiml_reply(self, inbound: SimMessage, body: str) -> SimMessage:
        return self.store.add(
            SimMessage(
                sid=new_sid("SM"),
                account_sid=self.settings.account_sid,
                direction="outbound-reply",
                to=inbound.from_ or "",
                from_=inbound.to,
                body=body,
                status="delivered",
                seq=self.store.next_seq(),
                num_segments=count_segments(body),
                date_sent=utcnow(),
            )
        )


def create_app(
    settings: Settings | None = None, name: str = "sms_simulator", configure_logging: bool = False
) -> Sanic:
    """Builds the app; logging is left to the caller (``__main__`` sets it up)."""
    settings = settings or Settings.from_env()
    app = Sanic(name, configure_logging=configure_logging)
    # sanic-ext is installed for the backend; the simulator needs none of its extras.
    app.config.AUTO_EXTEND = False
    simulator = Simulator(settings)
    app.ctx.simulator = simulator

    @app.before_server_start
    async def start(_: Sanic) -> None:
        await simulator.start()

    @app.after_server_stop
    async def stop(_: Sanic) -> None:
        await simulator.stop()

    @app.exception(TwilioApiError)
    async def twilio_error(_: Request, error: TwilioApiError) -> HTTPResponse:
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else None
        return json(error.body(), status=error.status, headers=headers)

    # -- Twilio REST API

    messages_path = "/2010-04-01/Accounts/<account_sid>/Messages.json"
    message_path = "/2010-04-01/Accounts/<account_sid>/Messages/<sid_file>"

    def message_or_404(request: Request, account_sid: str, sid_file: str) -> SimMessage:
        simulator.check_auth(request, account_sid)
        message = (
            simulator.store.get(sid_file.removesuffix(".json"))
            if sid_file.endswith(".json")
            else None
        )
        if message is None:
            raise TwilioApiError(404, 20404, f"The requested resource {request.path} was not found")
        return message

    @app.post(messages_path)
    async def create_message(request: Request, account_sid: str) -> HTTPResponse:
        simulator.check_auth(request, account_sid)
        message, delay = simulator.create_message(parse_form(request))
        if delay:
            await asyncio.sleep(delay)  # Twilio took it, but answers late
        return json(message.to_resource(), status=201)

    @app.get(messages_path)
    async def list_messages(request: Request, account_sid: str) -> HTTPResponse:
        simulator.check_auth(request, account_sid)
        return json(simulator.list_page(request, account_sid))

    @app.get(message_path)
    async def fetch_message(request: Request, account_sid: str, sid_file: str) -> HTTPResponse:
        return json(message_or_404(request, account_sid, sid_file).to_resource())

    @app.post(message_path)
    async def update_message(request: Request, account_sid: str, sid_file: str) -> HTTPResponse:
        message = message_or_404(request, account_sid, sid_file)
        return json(simulator.update_message(message, parse_form(request)).to_resource())

    @app.delete(message_path)
    async def delete_message(request: Request, account_sid: str, sid_file: str) -> HTTPResponse:
        message = message_or_404(request, account_sid, sid_file)
        simulator.store.delete(message.sid)
        return empty(status=204)

    # -- simulator API

    @app.get("/simulator/messages")
    async def simulator_messages(request: Request) -> HTTPResponse:
        messages = simulator.store.filter(
            to=_query_number(request, "to"),
            from_=_query_number(request, "from"),
            phone=_query_number(request, "phone"),
        )
        return json([message.to_simulator_json() for message in messages])

    @app.get("/simulator/numbers")
    async def simulator_numbers(_: Request) -> HTTPResponse:
        return json(simulator.store.numbers({settings.from_number}))

    @app.get("/simulator/config")
    async def simulator_config(_: Request) -> HTTPResponse:
        # Everything but the auth token.
        return json(
            {
                "account_sid": settings.account_sid,
                "from_number": settings.from_number,
                "public_base_url": settings.public_base_url,
                "inbound_url": settings.inbound_url,
                "status_delay": settings.status_delay,
                "advanced_opt_out": simulator.advanced_opt_out,
            }
        )

    @app.post("/simulator/settings")
    async def simulator_settings(request: Request) -> HTTPResponse:
        """Switch Twilio's Advanced Opt-Out on or off, as a Messaging Service setting would."""
        data = request.json if request.body else None
        if not isinstance(data, dict) or not isinstance(data.get("advanced_opt_out"), bool):
            return _bad_request("'advanced_opt_out' must be true or false", "advanced_opt_out")
        simulator.advanced_opt_out = data["advanced_opt_out"]
        return json({"advanced_opt_out": simulator.advanced_opt_out})

    @app.post("/simulator/inbound")
    async def simulator_inbound(request: Request) -> HTTPResponse:
        data = request.json if request.body else None
        if not isinstance(data, dict):
            return _bad_request("expected a JSON object", "body")
        sender = data.get("from")
        if not isinstance(sender, str) or not is_e164(sender):
            return _bad_request("'from' must be an E.164 phone number", "from")
        body = data.get("body", "")
        media_urls = data.get("media_urls") or []
        if not isinstance(body, str):
            return _bad_request("'body' must be a string", "body")
        if not isinstance(media_urls, list) or not all(isinstance(url, str) for url in media_urls):
            return _bad_request("'media_urls' must be a list of URLs", "media_urls")
        if not body.strip() and not media_urls:
            return _bad_request("'body' is required", "body")
        message_sid = data.get("message_sid")
        if message_sid is not None and (
            not isinstance(message_sid, str) or not message_sid.isalnum()
        ):
            return _bad_request("'message_sid' must be a Twilio SID", "message_sid")

        message = simulator.store.get(message_sid) if message_sid else None
        if message is None:
            # A re-sent MessageSid (duplicate delivery) is the same text, shown once.
            message = simulator.store.add(
                SimMessage(
                    sid=message_sid or new_sid("MM" if media_urls else "SM"),
                    account_sid=settings.account_sid,
                    direction="inbound",
                    to=str(data.get("to") or settings.from_number),
                    from_=sender,
                    body=body,
                    status="received",
                    seq=simulator.store.next_seq(),
                    media_urls=list(media_urls),
                    num_segments=count_segments(body),
                    date_sent=utcnow(),
                )
            )
        result = await simulator.deliver_inbound(message, bool(data.get("forge_signature")))
        return json(result, status=200 if result["status"] is not None else 502)

    @app.post("/simulator/faults")
    async def simulator_add_fault(request: Request) -> HTTPResponse:
        data = request.json if request.body else None
        if not isinstance(data, dict):
            return _bad_request("expected a JSON object", "body")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            return _bad_request(f"'kind' must be one of {', '.join(FAULT_KINDS)}", "kind")
        to = data.get("to")
        if to is not None and (not isinstance(to, str) or not is_e164(to)):
            return _bad_request(
                "'to' must be an E.164 phone number (or omitted for any number)", "to"
            )
        count = data.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return _bad_request("'count' must be a positive integer", "count")
        error_code = data.get("error_code")
        if error_code is not None and (
            not isinstance(error_code, int) or isinstance(error_code, bool)
        ):
            return _bad_request("'error_code' must be an integer", "error_code")
        seconds = data.get("seconds")
        if seconds is not None and (
            not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0
        ):
            return _bad_request("'seconds' must be a positive number", "seconds")
        delay = data.get("delay_seconds", 10)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            return _bad_request("'delay_seconds' must be a number of seconds", "delay_seconds")
        until = datetime.now(timezone.utc) + timedelta(seconds=seconds) if seconds else None
        fault = simulator.store.add_fault(
            Fault(
                kind=kind,
                remaining=count,
                to=to,
                error_code=error_code,
                until=until,
                delay_seconds=float(delay),
            )
        )
        return json(fault.to_json(), status=201)

    @app.post("/simulator/messages/<sid:str>/replay_callbacks")
    async def simulator_replay_callbacks(request: Request, sid: str) -> HTTPResponse:
        """Post a message's status callbacks again (Twilio retries and reorders them)."""
        message = simulator.store.get(sid)
        if message is None or not message.status_callback:
            return _bad_request("no such message with a StatusCallback", "sid")
        order = (request.json or {}).get("order", "same") if request.body else "same"
        reports = list(message.reports)
        if order == "reverse":
            reports.reverse()
        for params in reports:
            await simulator.send_status_callback(message.status_callback, params)
        return json({"replayed": len(reports)})

    @app.get("/simulator/faults")
    async def simulator_faults(_: Request) -> HTTPResponse:
        return json([fault.to_json() for fault in simulator.store.faults])

    @app.post("/simulator/reset")
    async def simulator_reset(_: Request) -> HTTPResponse:
        simulator.reset()
        return json({"status": "reset"})

    @app.get("/simulator/health")
    async def simulator_health(_: Request) -> HTTPResponse:
        return json({"status": "ok", "time": datetime.now(timezone.utc).isoformat()})

    # -- phone page

    page = PHONE_PAGE.read_text(encoding="utf-8")

    @app.get("/")
    async def phone_page(_: Request) -> HTTPResponse:
        return html(page)

    return app
