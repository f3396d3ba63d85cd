"""The backend's HTTP application: staff API, reply API for the actions, Twilio status callbacks.

Handlers stay thin: check the input, call one use case in a worker thread, shape the answer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, html, json
from sanic_ext import openapi
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from waitlist.adapters.messenger import Messenger, mask_phone
from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import DomainError
from waitlist.entrypoints import schemas
from waitlist.entrypoints.console import CONSOLE_HTML
from waitlist.entrypoints.scheduler import Worker
from waitlist.service_layer import dispatch, replies, staff
from waitlist.service_layer.clock import Clock
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Backend:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    session_factory: sessionmaker[Session]
    messenger: Messenger
    clock: Clock
    worker: Worker | None = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    async def run(self, use_case: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous use case off the event loop, then let the outbox go out."""
        result = await asyncio.to_thread(partial(use_case, self.uow(), *args, **kwargs))
        if self.worker is not None:
            self.worker.kick()
        return result


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error(status: int, message: str, field: str | None = None) -> HTTPResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return json(body, status=status)


def parse(request: Request, schema: type[M]) -> M:
    try:
        payload = request.json
    except Exception as exc:
        raise ApiError(400, "the body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        raise ApiError(422, f"{field}: {message}" if field else message, field) from exc


def _bearer_ok(request: Request, expected: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def backend_of(request: Request) -> Backend:
    return request.app.ctx.backend


def staff_name(request: Request) -> str:
    return request.headers.get("x-staff-user", "staff")


def entry_input(body: schemas.EntryFields) -> tuple[staff.EntryInput, set[str]]:
    fields = set(body.model_fields_set) - {"patient_id"}
    data = staff.EntryInput(
        **{name: getattr(body, name) for name in fields if name != "days_of_week"}
    )
    if "days_of_week" in fields:
        data.days_of_week = [model.WEEKDAYS.index(d) for d in body.days_of_week or []]
    return data, fields


def query_int(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a whole number", name) from exc
    if not 0 <= value <= maximum:
        raise ApiError(400, f"{name} must be between 0 and {maximum}", name)
    return value


# ------------------------------------------------------------------------------------------------
# Staff API

staff_bp = Blueprint("staff", url_prefix="/api/v1")


@staff_bp.on_request
async def require_staff_token(request: Request) -> HTTPResponse | None:
    if not _bearer_ok(request, backend_of(request).settings.staff_api_token):
        return error(401, "missing or wrong bearer token")
    return None


@staff_bp.post("/providers")
@openapi.body({"application/json": schemas.CreateProvider})
@openapi.secured("bearer")
async def create_provider(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateProvider)
    view = await b.run(
        staff.create_provider, body.name, body.provider_type, b.clock.now(), staff_name(request)
    )
    return json(view, status=201)


@staff_bp.get("/providers")
@openapi.secured("bearer")
async def list_providers(request: Request) -> HTTPResponse:
    return json(await backend_of(request).run(staff.list_providers))


@staff_bp.post("/patients")
@openapi.body({"application/json": schemas.CreatePatient})
@openapi.secured("bearer")
async def create_patient(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreatePatient)
    view = await b.run(
        staff.create_patient,
        body.phone,
        body.display_name,
        body.preferred_language,
        body.consent_source,
        b.clock.now(),
        staff_name(request),
    )
    return json(view, status=201)


@staff_bp.get("/patients/<patient_id:int>")
@openapi.secured("bearer")
async def get_patient(request: Request, patient_id: int) -> HTTPResponse:
    return json(await backend_of(request).run(staff.get_patient, patient_id))


@staff_bp.post("/waitlist")
@openapi.body({"application/json": schemas.CreateEntry})
@openapi.secured("bearer")
async def create_entry(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateEntry)
    data, fields = entry_input(body)
    view = await b.run(
        staff.add_to_waitlist,
        body.patient_id,
        data,
        fields,
        b.clock.now(),
        b.settings,
        staff_name(request),
    )
    return json(view, status=201)


@staff_bp.get("/waitlist")
@openapi.secured("bearer")
async def list_entries(request: Request) -> HTTPResponse:
    b = backend_of(request)
    status = request.args.get("status")
    if status is not None and status not in {s.value for s in model.EntryStatus}:
        raise ApiError(400, "status must be active, fulfilled or removed", "status")
    limit = query_int(request, "limit", 100, 1000)
    offset = query_int(request, "offset", 0, 10**9)
    return json(await b.run(staff.list_entries, status, limit, offset, b.clock.now(), b.settings))


@staff_bp.get("/waitlist/<entry_id:int>")
@openapi.secured("bearer")
async def get_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    return json(await b.run(staff.get_entry, entry_id, b.clock.now(), b.settings))


@staff_bp.patch("/waitlist/<entry_id:int>")
@openapi.body({"application/json": schemas.UpdateEntry})
@openapi.secured("bearer")
async def update_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    data, fields = entry_input(parse(request, schemas.UpdateEntry))
    view = await b.run(
        staff.update_entry, entry_id, data, fields, b.clock.now(), b.settings, staff_name(request)
    )
    return json(view)


@staff_bp.post("/waitlist/<entry_id:int>/boost")
@openapi.body({"application/json": schemas.Boost})
@openapi.secured("bearer")
async def boost_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.Boost)
    data = staff.EntryInput(manual_boost=body.manual_boost)
    view = await b.run(
        staff.update_entry,
        entry_id,
        data,
        {"manual_boost"},
        b.clock.now(),
        b.settings,
        staff_name(request),
    )
    return json(view)


@staff_bp.delete("/waitlist/<entry_id:int>")
@openapi.secured("bearer")
async def remove_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    view = await b.run(staff.remove_entry, entry_id, b.clock.now(), b.settings, staff_name(request))
    return json(view)


@staff_bp.post("/cancellations")
@openapi.body({"application/json": schemas.CreateCancellation})
@openapi.secured("bearer")
async def create_cancellation(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateCancellation)
    view = await b.run(
        staff.create_cancellation,
        body.provider_id,
        body.location,
        body.slot_start,
        body.slot_end,
        b.clock.now(),
        b.settings,
        staff_name(request),
    )
    return json(view, status=201)


@staff_bp.get("/cancellations")
@openapi.secured("bearer")
async def list_cancellations(request: Request) -> HTTPResponse:
    status = request.args.get("status", "open")
    if status not in {s.value for s in model.CancellationStatus} | {"all"}:
        raise ApiError(400, "status must be open, filled, expired, aborted or all", "status")
    limit = query_int(request, "limit", 100, 1000)
    offset = query_int(request, "offset", 0, 10**9)
    return json(
        await backend_of(request).run(
            staff.list_cancellations, None if status == "all" else status, limit, offset
        )
    )


@staff_bp.get("/cancellations/<cancellation_id:int>")
@openapi.secured("bearer")
async def get_cancellation(request: Request, cancellation_id: int) -> HTTPResponse:
    return json(await backend_of(request).run(staff.get_cancellation, cancellation_id))


@staff_bp.post("/cancellations/<cancellation_id:int>/abort")
@openapi.secured("bearer")
async def abort_cancellation(request: Request, cancellation_id: int) -> HTTPResponse:
    b = backend_of(request)
    view = await b.run(
        staff.abort_cancellation, cancellation_id, b.clock.now(), staff_name(request)
    )
    return json(view)


@staff_bp.get("/events")
@openapi.secured("bearer")
async def list_events(request: Request) -> HTTPResponse:
    limit = query_int(request, "limit", 100, 1000)
    return json(await backend_of(request).run(staff.list_events, request.args.get("kind"), limit))


# ------------------------------------------------------------------------------------------------
# Reply API for the action server

reply_bp = Blueprint("replies", url_prefix="/internal/v1")


@reply_bp.on_request
async def require_actions_token(request: Request) -> HTTPResponse | None:
    if not _bearer_ok(request, backend_of(request).settings.actions_api_token):
        return error(401, "missing or wrong bearer token")
    return None


async def _reply(
    request: Request, use_case: Callable[..., dict], schema: type[M], *extra: str
) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schema)
    args = [getattr(body, name) for name in extra]
    answer = await b.run(
        use_case,
        b.settings,
        b.clock.now(),
        body.phone,
        body.message_id,
        *args,  # type: ignore[attr-defined]
    )
    return json(answer)


@reply_bp.post("/replies/accept")
@openapi.body({"application/json": schemas.Reply})
async def reply_accept(request: Request) -> HTTPResponse:
    return await _reply(request, replies.accept, schemas.Reply)


@reply_bp.post("/replies/decline")
@openapi.body({"application/json": schemas.Reply})
async def reply_decline(request: Request) -> HTTPResponse:
    return await _reply(request, replies.decline, schemas.Reply)


@reply_bp.post("/replies/defer")
@openapi.body({"application/json": schemas.DeferReply})
async def reply_defer(request: Request) -> HTTPResponse:
    return await _reply(request, replies.defer, schemas.DeferReply, "not_before")


@reply_bp.post("/replies/availability")
@openapi.body({"application/json": schemas.AvailabilityReply})
async def reply_availability(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.AvailabilityReply)
    days = None
    if body.days_of_week is not None:
        days = [model.WEEKDAYS.index(d) for d in body.days_of_week]
    answer = await b.run(
        replies.update_availability,
        b.settings,
        b.clock.now(),
        body.phone,
        body.message_id,
        days,
        body.time_of_day,
        body.not_after,
    )
    return json(answer)


@reply_bp.post("/replies/leave")
@openapi.body({"application/json": schemas.Reply})
async def reply_leave(request: Request) -> HTTPResponse:
    return await _reply(request, replies.leave, schemas.Reply)


@reply_bp.post("/replies/opt_out")
@openapi.body({"application/json": schemas.Reply})
async def reply_opt_out(request: Request) -> HTTPResponse:
    return await _reply(request, replies.opt_out, schemas.Reply)


@reply_bp.post("/replies/opt_in")
@openapi.body({"application/json": schemas.Reply})
async def reply_opt_in(request: Request) -> HTTPResponse:
    return await _reply(request, replies.opt_in, schemas.Reply)


@reply_bp.post("/replies/handoff")
@openapi.body({"application/json": schemas.HandoffReply})
async def reply_handoff(request: Request) -> HTTPResponse:
    return await _reply(request, replies.handoff, schemas.HandoffReply, "reason")


@reply_bp.get("/offers/current")
async def current_offer(request: Request) -> HTTPResponse:
    b = backend_of(request)
    try:
        phone = schemas.normalise_phone(request.args.get("phone", ""))
    except ValueError as exc:
        raise ApiError(422, f"phone: {exc}", "phone") from exc
    return json(await b.run(replies.current_offer, b.settings, b.clock.now(), phone))


# ------------------------------------------------------------------------------------------------
# Twilio status callbacks

twilio_bp = Blueprint("twilio", url_prefix="/webhooks/twilio")


def twilio_signature_ok(request: Request, settings: Settings) -> bool:
    """Twilio signs the public URL it called; behind a proxy that is PUBLIC_BASE_URL + path + query."""
    if not settings.twilio_auth_token:
        return False
    url = settings.public_base_url + request.path
    if request.query_string:
        url += "?" + request.query_string
    params = {key: values[0] for key, values in request.form.items()} if request.form else {}
    signature = request.headers.get("x-twilio-signature", "")
    return RequestValidator(settings.twilio_auth_token).validate(url, params, signature)


@twilio_bp.post("/status")
async def twilio_status(request: Request) -> HTTPResponse:
    b = backend_of(request)
    if not twilio_signature_ok(request, b.settings):
        log.warning("status callback with a bad signature refused")
        return error(403, "invalid Twilio signature")
    form = request.form or {}
    phone, sid, status = form.get("To"), form.get("MessageSid"), form.get("MessageStatus")
    if not (phone and sid and status):
        return error(400, "To, MessageSid and MessageStatus are required")
    result = await b.run(
        dispatch.record_delivery_status,
        b.settings,
        b.clock.now(),
        phone,
        sid,
        status,
        form.get("ErrorCode"),
    )
    log.info("status %s for %s to %s: %s", status, sid, mask_phone(phone), result)
    return HTTPResponse(status=204)


# ------------------------------------------------------------------------------------------------


def create_app(backend: Backend, name: str = "waitlist_backend") -> Sanic:
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.ext.openapi.describe(
        "Clinic waitlist backend",
        version="1.0.0",
        description="Staff API (bearer STAFF_API_TOKEN) and reply API for the assistant.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer")
    app.ctx.backend = backend
    app.blueprint(staff_bp)
    app.blueprint(reply_bp)
    app.blueprint(twilio_bp)

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/")
    async def console(request: Request) -> HTTPResponse:
        return html(CONSOLE_HTML)

    @app.exception(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTTPResponse:
        return error(exc.status, exc.message, exc.field)

    @app.exception(staff.NotFound)
    async def not_found(request: Request, exc: staff.NotFound) -> HTTPResponse:
        return error(404, str(exc))

    @app.exception(staff.Conflict)
    async def conflict(request: Request, exc: staff.Conflict) -> HTTPResponse:
        return error(409, str(exc), exc.field)

    @app.exception(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> HTTPResponse:
        return error(422, str(exc))

    if backend.worker is not None:
        worker = backend.worker

        @app.after_server_start
        async def start_worker(app: Sanic) -> None:
            worker.start(asyncio.get_running_loop())

        @app.before_server_stop
        async def stop_worker(app: Sanic) -> None:
            worker.stop()

    return app
