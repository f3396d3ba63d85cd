"""Console login: a session cookie (HttpOnly, SameSite=Strict) and a CSRF token for every change."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from waitlist.entrypoints import schemas
from waitlist.entrypoints.docs import component
from waitlist.entrypoints.http import (
    SESSION_COOKIE,
    ApiError,
    authenticate,
    backend_of,
    error,
    parse,
)
from waitlist.service_layer import accounts

auth_bp = Blueprint("auth", url_prefix="/auth")


def _me(request: Request, identity: accounts.Identity) -> dict:
    return {
        "username": identity.username,
        "role": identity.role.value,
        "csrf_token": identity.csrf_token,
        # the console enters and shows times in the clinic's zone, not the browser's
        "clinic_timezone": str(backend_of(request).settings.clinic_timezone),
    }


@auth_bp.post("/login")
@openapi.body({"application/json": component(schemas.Login)}, required=True)
async def login(request: Request) -> HTTPResponse:
    """Wrong name or password: 401, the same answer for both. Five in a row lock the account."""
    b = backend_of(request)
    body = parse(request, schemas.Login)
    try:
        token, identity = await b.run(accounts.login, body.username, body.password, b.clock.now())
    except accounts.LoginRefused as refused:
        if refused.locked_until is None:
            raise ApiError(401, "wrong username or password") from refused
        local = refused.locked_until.astimezone(b.settings.clinic_timezone).strftime("%H:%M")
        wait = max(1, int((refused.locked_until - b.clock.now()).total_seconds()))
        response = error(429, f"too many failed logins: this account is locked until {local}")
        response.headers["Retry-After"] = str(wait)
        return response
    response = json(_me(request, identity))
    response.add_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=b.settings.public_base_url.startswith("https://"),
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    return response


@auth_bp.post("/logout")
async def logout(request: Request) -> HTTPResponse:
    b = backend_of(request)
    identity = await authenticate(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await b.run(accounts.logout, token, b.clock.now(), identity.username)
    response = json({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@auth_bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    return json(_me(request, await authenticate(request)))
