"""Reply API under /internal/v1 for the action server (bearer ACTIONS_API_TOKEN); see
docs/reply-api.md."""

from __future__ import annotations

import time
from collections.abc import Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from waitlist import metrics
from waitlist.domain import model
from waitlist.entrypoints import schemas
from waitlist.entrypoints.http import ApiError, M, backend_of, bearer_ok, error, parse
from waitlist.service_layer import replies

reply_bp = Blueprint("replies", url_prefix="/internal/v1")


@reply_bp.on_request
async def require_actions_token(request: Request) -> HTTPResponse | None:
    if not bearer_ok(request, backend_of(request).settings.actions_api_token):
        return error(401, "missing or wrong bearer token")
    return None


async def _reply(
    request: Request, use_case: Callable[..., dict], schema: type[M], *extra: str
) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schema)
    args = [getattr(body, name) for name in extra]
    started = time.perf_counter()
    answer = await b.run(
        use_case,
        b.settings,
        b.clock.now(),
        body.phone,
        body.message_id,
        *args,  # type: ignore[attr-defined]
        language=body.language,  # type: ignore[attr-defined]
    )
    if use_case is replies.accept:
        metrics.CLAIM_SECONDS.observe(time.perf_counter() - started)
    metrics.REPLIES.labels(use_case.__name__, answer.get("outcome", "")).inc()
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
        language=body.language,
    )
    metrics.REPLIES.labels("update_availability", answer.get("outcome", "")).inc()
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
    return await _reply(request, replies.handoff, schemas.HandoffReply, "reason", "text")


@reply_bp.get("/offers/current")
async def current_offer(request: Request) -> HTTPResponse:
    b = backend_of(request)
    try:
        phone = schemas.normalise_phone(request.args.get("phone", ""))
    except ValueError as exc:
        raise ApiError(422, f"phone: {exc}", "phone") from exc
    return json(await b.run(replies.current_offer, b.settings, b.clock.now(), phone))

