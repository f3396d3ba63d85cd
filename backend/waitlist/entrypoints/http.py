"""Plumbing every route module shares: the per-process Backend, errors, bodies and bearer tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from http import HTTPStatus
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sanic import Request
from sanic.response import HTTPResponse, json
from sqlalchemy.orm import Session, sessionmaker

from waitlist import metrics
from waitlist.adapters import migrations
from waitlist.adapters.messenger import Messenger
from waitlist.config import Settings
from waitlist.domain import model
from waitlist.entrypoints import schemas
from waitlist.entrypoints.scheduler import Worker
from waitlist.service_layer import accounts, idempotency, staff
from waitlist.service_layer.clock import Clock
from waitlist.service_layer.unit_of_work import UnitOfWork

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
        uow = self.uow()
        result = await asyncio.to_thread(partial(use_case, uow, *args, **kwargs))
        # only a change can have queued a text: the console's reads every few seconds must not
        # pile dispatch runs onto the scheduler
        if self.worker is not None and uow.committed:
            self.worker.kick()
        return result

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """The database answers, its schema is at the migrations' head, the sweep is ticking."""
        checks: dict[str, dict[str, Any]] = {}
        try:
            revision = await asyncio.wait_for(asyncio.to_thread(self._schema_revision), 5)
            checks["database"] = {"ok": True}
            head = migrations.head_revision()
            checks["migrations"] = {"ok": revision == head, "at": revision, "head": head}
        except Exception as exc:  # any failure means "not ready"; the reason names no data
            checks["database"] = {"ok": False, "error": type(exc).__name__}
            checks["migrations"] = {"ok": False, "error": "database unavailable"}
        if self.worker is not None:
            age = self.worker.seconds_since_tick()
            limit = 3 * self.settings.sweep_seconds + 10
            checks["scheduler"] = {"ok": age is not None and age < limit, "seconds_since_tick": age}
        return checks

    def _schema_revision(self) -> str | None:
        with self.session_factory() as session:
            return session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    async def refresh_gauges(self) -> None:
        """Gauges read from the database at scrape time, so every replica reports the same."""
        try:
            view = await asyncio.wait_for(asyncio.to_thread(staff.messaging_health, self.uow()), 5)
        except Exception:  # a scrape during a database outage still answers
            return
        metrics.MESSAGING_PAUSED.set(1 if view["paused"] else 0)
        metrics.FAILURES_IN_A_ROW.set(view["consecutive_failures"])
        metrics.OUTBOX_DEPTH.set(view["outbox_depth"])


IDEMPOTENCY_HEADER = "Idempotency-Key"


async def idempotent(
    request: Request, scope: str, handler: Callable[[], Awaitable[tuple[int, Any]]]
) -> HTTPResponse:
    """Answer a POST once per Idempotency-Key (service_layer/idempotency.py); without the header,
    just run it. `handler` returns the status and the JSON body."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        status, body = await handler()
        return json(body, status=status)
    if not 0 < len(key) <= 255:
        raise ApiError(400, "an Idempotency-Key has 1 to 255 characters", IDEMPOTENCY_HEADER)
    b = backend_of(request)
    digest = hashlib.sha256(request.body or b"").hexdigest()
    replay = await b.run(idempotency.begin, scope, key, digest, b.clock.now())
    if replay is not None:
        if not replay.same_request:
            raise ApiError(422, "this Idempotency-Key came with another body", IDEMPOTENCY_HEADER)
        if replay.status_code is None:
            raise ApiError(
                409, "the first request with this key is still running", IDEMPOTENCY_HEADER
            )
        headers = {"Idempotent-Replayed": "true"}
        return json(replay.response, status=replay.status_code, headers=headers)
    try:
        status, body = await handler()
    except Exception:
        await b.run(idempotency.release, scope, key)
        raise
    await b.run(idempotency.finish, scope, key, status, body)
    return json(body, status=status)


MAX_ROW_ID = 2**31 - 1  # PostgreSQL's integer, the type of every id column
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods this request's path answers to, for the Allow header of a 405 (Sanic names
    them for a fixed path only, not for one with an id in it)."""
    allowed = []
    for method in METHODS:
        try:
            request.app.router.get(request.path, method, None)
        except Exception:  # NotFound or MethodNotAllowed: not this one
            continue
        allowed.append(method)
    return allowed


def row_id(segment: str) -> int:
    """A path id, or ValueError (no route matches, so 404) past what an id column can hold."""
    value = int(segment)
    if not 0 < value <= MAX_ROW_ID:
        raise ValueError(f"id out of range: {segment}")
    return value


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


PROBLEM_JSON = "application/problem+json"


def error(status: int, message: str, field: str | None = None, **details: Any) -> HTTPResponse:
    """An RFC 9457 problem: title, status, detail and an `errors` list naming the field. `error`
    and `field` stay at the top level for the clients written against the first version."""
    named = {"field": field} if field else {}
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "errors": [{"detail": message, **named}],
        "error": message,
        **named,
        **details,
    }
    return json(body, status=status, content_type=PROBLEM_JSON)


def parse(request: Request, schema: type[M]) -> M:
    try:
        payload = request.json
    except Exception as exc:
        raise ApiError(400, "the body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        # strict, as JSON: a number is not a text, nor `false` or "5" a number, as the document
        # says; dates and times still come as their ISO texts
        return schema.model_validate_json(request.body, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "string_pattern_mismatch":
            # the field's description says it in words; a regular expression helps no one
            info = schema.model_fields.get(str(first["loc"][0])) if first["loc"] else None
            described = info.description if info is not None else None
            message = f"must be {described}" if described else "has the wrong form"
        raise ApiError(422, f"{field}: {message}" if field else message, field) from exc


def bearer_ok(request: Request, expected: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def backend_of(request: Request) -> Backend:
    return request.app.ctx.backend


SESSION_COOKIE = "waitlist_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(request: Request) -> accounts.Identity:
    """Who is asking, remembered on the request; 401 when nobody, 403 on a missing CSRF token.

    A bearer token is the bootstrap STAFF_API_TOKEN or a user's personal token; a browser has a
    session cookie, and every change it asks for carries the session's CSRF token in a header.
    """
    known = getattr(request.ctx, "staff", None)
    if known is not None:
        return known
    b = backend_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    identity: accounts.Identity | None = None
    if scheme.lower() == "bearer" and token:
        if bearer_ok(request, b.settings.staff_api_token):
            identity = accounts.BOOTSTRAP
        else:
            identity = await b.run(accounts.token_identity, token)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        identity = await b.run(accounts.session_identity, cookie, b.clock.now())
        if identity is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), (identity.csrf_token or "").encode()):
                raise ApiError(403, "missing or wrong CSRF token", CSRF_HEADER)
    if identity is None:
        raise ApiError(401, "log in, or send a bearer token")
    request.ctx.staff = identity
    return identity


def require_admin(request: Request) -> accounts.Identity:
    identity: accounts.Identity = request.ctx.staff
    if not identity.is_admin:
        raise ApiError(403, "only an admin may do this")
    return identity


def staff_name(request: Request) -> str:
    """The username the audit trail records for this request."""
    return request.ctx.staff.username


def entry_input(body: schemas.EntryFields) -> tuple[staff.EntryInput, set[str]]:
    fields = set(body.model_fields_set) - {"patient_id"}
    data = staff.EntryInput(
        **{name: getattr(body, name) for name in fields if name != "days_of_week"}
    )
    if "days_of_week" in fields:
        data.days_of_week = [model.WEEKDAYS.index(d) for d in body.days_of_week or []]
    return data, fields


def query_value(request: Request, name: str) -> str | None:
    """A query parameter as sent: `?limit=` is an empty value (refused where a value needs a
    form), not a missing one, which `request.args` would make of it."""
    values = request.get_args(keep_blank_values=True).getlist(name)
    return values[0] if values else None


def query_date(request: Request, name: str) -> date | None:
    """A clinic day, YYYY-MM-DD in the years 2000 to 2999: far enough from date's limits that a
    span around it never overflows."""
    raw = query_value(request, name)
    if raw is None:
        return None
    try:
        value = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        value = None
    if value is None or not 2000 <= value.year <= 2999:
        raise ApiError(400, f"{name} must be a date from 2000 on, YYYY-MM-DD", name)
    return value


def query_int(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = query_value(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a whole number", name) from exc
    if not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be between {minimum} and {maximum}", name)
    return value


# Every list in the staff API pages the same way: `limit` rows from `offset` (a page's `next`).
MAX_PAGE = 1000
MAX_OFFSET = MAX_ROW_ID  # no list can hold more rows than an id column can number


def page_args(request: Request, default_limit: int = 100) -> tuple[int, int]:
    """`limit` (1 to MAX_PAGE) and `offset` (0 to MAX_OFFSET) from the query, or 400."""
    limit = query_int(request, "limit", default_limit, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, MAX_OFFSET)
    return limit, offset
