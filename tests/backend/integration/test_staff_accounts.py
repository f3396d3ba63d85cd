"""Staff accounts over HTTP: login with a session cookie and CSRF, the lockout, personal tokens,
roles, and an audit trail that names the real user. Real PostgreSQL, the real app."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from sanic import Sanic
from sqlalchemy.engine import Engine

from tests.backend.integration.test_api import STAFF, app, call  # noqa: F401  (the app fixture)
from waitlist import cli
from waitlist.config import Settings

PASSWORD = "correct horse battery staple"


def add_user(app: Sanic, username: str, role: str = "front_desk") -> dict:  # noqa: F811
    body = {"username": username, "password": PASSWORD, "role": role}
    response = call(app, "post", "/api/v1/users", STAFF, json=body)
    assert response.status == 201, response.json
    return response.json


def login(app: Sanic, username: str, password: str = PASSWORD) -> Any:  # noqa: F811
    return call(app, "post", "/auth/login", json={"username": username, "password": password})


def session_headers(response: Any, csrf: bool = True) -> dict[str, str]:
    headers = {"Cookie": f"waitlist_session={response.cookies['waitlist_session']}"}
    if csrf:
        headers["X-CSRF-Token"] = response.json["csrf_token"]
    return headers


def audit(engine: Engine, kind: str) -> list[str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor_ref FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        )
        return [row.actor_ref for row in rows]


def test_login_sets_a_strict_http_only_cookie_and_changes_carry_the_csrf_token(
    app: Sanic,  # noqa: F811
    clean_db: Engine,
) -> None:
    add_user(app, "maria")
    response = login(app, "Maria")
    assert response.status == 200
    assert response.json["username"] == "maria" and response.json["role"] == "front_desk"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie

    body = {"name": "Dr. Lee", "provider_type": "derm"}
    assert (
        call(app, "get", "/api/v1/providers", session_headers(response, csrf=False)).status == 200
    )
    # a change without the CSRF token is refused and writes nothing
    refused = call(
        app, "post", "/api/v1/providers", session_headers(response, csrf=False), json=body
    )
    assert refused.status == 403 and refused.json["field"] == "X-CSRF-Token"
    assert call(app, "get", "/api/v1/providers", STAFF).json["items"] == []
    # with it, the change is made and audited under maria's name, whatever a header claims
    headers = {**session_headers(response), "X-Staff-User": "someone-else"}
    assert call(app, "post", "/api/v1/providers", headers, json=body).status == 201
    assert audit(clean_db, "provider_created") == ["maria"]
    assert audit(clean_db, "staff_logged_in") == ["maria"]

    assert call(app, "post", "/auth/logout", session_headers(response)).status == 200
    assert call(app, "get", "/api/v1/providers", session_headers(response)).status == 401


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    app: Sanic,  # noqa: F811
    clean_db: Engine,
) -> None:
    add_user(app, "maria")
    answers = [login(app, "maria", "wrong password!!").status for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]
    locked = login(app, "maria")
    assert locked.status == 429 and "locked until" in locked.json["error"]
    assert 0 < int(locked.headers["retry-after"]) <= 900
    assert login(app, "nobody", "wrong password!!").status == 401  # same answer as a bad password
    app.ctx.backend.clock.advance(minutes=15)
    assert login(app, "maria").status == 200
    assert audit(clean_db, "staff_locked_out") == ["maria", "maria"]


def test_a_personal_token_acts_as_its_user_and_a_new_one_replaces_it(
    app: Sanic,  # noqa: F811
    clean_db: Engine,
) -> None:
    maria = add_user(app, "maria")
    first = call(app, "post", f"/api/v1/users/{maria['id']}/token", STAFF).json["api_token"]
    token = {"Authorization": f"Bearer {first}"}
    body = {"name": "Dr. Lee", "provider_type": "derm"}
    assert call(app, "post", "/api/v1/providers", token, json=body).status == 201
    assert audit(clean_db, "provider_created") == ["maria"]
    # maria renews her own token; the old one stops working
    renewed = call(app, "post", f"/api/v1/users/{maria['id']}/token", token)
    assert renewed.status == 201
    assert call(app, "get", "/api/v1/providers", token).status == 401
    fresh = {"Authorization": f"Bearer {renewed.json['api_token']}"}
    assert call(app, "get", "/api/v1/providers", fresh).status == 200
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("SELECT api_token_hash FROM staff_users")).scalar_one()
    assert renewed.json["api_token"] not in stored  # only a hash is kept


def test_only_admins_manage_accounts(app: Sanic) -> None:  # noqa: F811
    maria = add_user(app, "maria")
    ana = add_user(app, "ana", role="admin")
    desk = session_headers(login(app, "maria"))
    body = {"username": "eve", "password": PASSWORD}
    assert call(app, "post", "/api/v1/users", desk, json=body).status == 403
    assert call(app, "get", "/api/v1/users", desk).status == 403
    assert call(app, "post", f"/api/v1/users/{ana['id']}/token", desk).status == 403
    admin = session_headers(login(app, "ana"))
    assert call(app, "post", "/api/v1/users", admin, json=body).status == 201
    names = [u["username"] for u in call(app, "get", "/api/v1/users", admin).json["items"]]
    assert names == ["ana", "eve", "maria"]
    assert call(app, "post", f"/api/v1/users/{maria['id']}/token", admin).status == 201


@pytest.mark.parametrize(
    "body",
    [
        {"username": "maria", "password": "short"},
        {"username": "maria jones", "password": PASSWORD},
        {"username": "maria", "password": PASSWORD, "role": "owner"},
    ],
)
def test_bad_accounts_are_refused(app: Sanic, body: dict) -> None:  # noqa: F811
    assert call(app, "post", "/api/v1/users", STAFF, json=body).status in (400, 422)
    assert call(app, "get", "/api/v1/users", STAFF).json["items"] == []


def test_the_cli_adds_the_first_admin(
    clean_db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"DATABASE_URL": clean_db.url.render_as_string(False)})
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "Ana", "--role", "admin", "--password-stdin"], settings) == 0
    assert "added admin ana" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "add", "bob", "--password-stdin"], settings) == 2
    with clean_db.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, role, password_hash FROM staff_users")).all()
    assert [(r.username, r.role) for r in rows] == [("ana", "admin")]
    assert rows[0].password_hash.startswith("$argon2id$")
