"""The backend's HTTP application: one route module per API (routes/), wired here.

Handlers stay thin: check the input, call one use case in a worker thread, shape the answer.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, html, raw
from sanic_ext import openapi

from waitlist.domain.model import DomainError
from waitlist.entrypoints.console import CHART_JS, CHART_JS_NAME, CONSOLE_HEADERS, CONSOLE_HTML
from waitlist.entrypoints.http import ApiError, Backend, allowed_methods, error, row_id
from waitlist.entrypoints.routes.auth import auth_bp
from waitlist.entrypoints.routes.operations import operations_bp
from waitlist.entrypoints.routes.replies import reply_bp
from waitlist.entrypoints.routes.staff import staff_bp
from waitlist.entrypoints.routes.twilio_status import twilio_bp
from waitlist.service_layer import staff

__all__ = ["Backend", "create_app"]

log = logging.getLogger("waitlist.http")

# Every API body is small JSON; a bigger one is refused (413) before anyone reads it.
MAX_BODY_BYTES = 1024 * 1024


def create_app(backend: Backend, name: str = "waitlist_backend") -> Sanic:
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.ext.openapi.describe(
        "Clinic waitlist backend",
        version="1.0.0",
        description="Staff API (bearer STAFF_API_TOKEN) and reply API for the assistant.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer")
    app.ctx.backend = backend
    # Before the blueprints: their routes name this type. An id PostgreSQL's integer cannot hold
    # matches no route (404), instead of reaching the database and failing there (500).
    app.router.register_pattern("row_id", row_id, r"^[0-9]{1,10}$")
    for blueprint in (staff_bp, auth_bp, reply_bp, twilio_bp, operations_bp):
        app.blueprint(blueprint)
    # /docs describes the staff API only: the assistant's reply API and Twilio's webhooks are
    # internal, and a map of them helps nobody but an attacker.
    for internal in (reply_bp, twilio_bp):
        openapi.exclude(bp=internal)

    @app.get("/")
    @openapi.exclude()
    async def console(request: Request) -> HTTPResponse:
        return html(CONSOLE_HTML, headers=CONSOLE_HEADERS)

    @app.get(f"/vendor/{CHART_JS_NAME}")
    @openapi.exclude()
    async def chart_library(request: Request) -> HTTPResponse:
        # the version is in the name, so a browser may keep it for good
        return raw(
            CHART_JS,
            content_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=31536000, immutable", **CONSOLE_HEADERS},
        )

    @app.exception(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTTPResponse:
        return error(exc.status, exc.message, exc.field)

    @app.exception(staff.NotFound)
    async def not_found(request: Request, exc: staff.NotFound) -> HTTPResponse:
        return error(404, str(exc))

    @app.exception(staff.Conflict)
    async def conflict(request: Request, exc: staff.Conflict) -> HTTPResponse:
        return error(409, str(exc), exc.field, **exc.details)

    @app.exception(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> HTTPResponse:
        return error(422, str(exc))

    # Sanic's own answers (unknown path 404, 405, 413 ...) in the same problem+json shape
    @app.exception(SanicException)
    async def sanic_error(request: Request, exc: SanicException) -> HTTPResponse:
        status = getattr(exc, "status_code", 500) or 500
        message = str(exc) if status < 500 else HTTPStatus(status).phrase
        response = error(status, message)
        for name, value in (getattr(exc, "headers", None) or {}).items():
            response.headers[name] = value
        if status == 405 and "allow" not in response.headers:  # RFC 9110 wants it on every 405
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        # the details stay in the log (without SQL parameters: engines hide them)
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "something went wrong on our side; nothing was changed")

    if backend.worker is not None:
        worker = backend.worker

        @app.after_server_start
        async def start_worker(app: Sanic) -> None:
            worker.start(asyncio.get_running_loop())

        @app.before_server_stop
        async def stop_worker(app: Sanic) -> None:
            worker.stop()

    return app
