"""Staff accounts: add a user, log in and out, personal API tokens, and who a request is.

Every change is audited under the real username. The shared STAFF_API_TOKEN stays as a bootstrap:
it acts as an admin named "bootstrap-token" in the audit trail, so a clinic can create its first
accounts over the API; `python -m waitlist users add` does the same from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from waitlist.adapters import credentials
from waitlist.domain import accounts
from waitlist.domain.model import Actor
from waitlist.service_layer import views
from waitlist.service_layer.staff import Conflict, NotFound
from waitlist.service_layer.unit_of_work import UnitOfWork

SESSION_LIFETIME = timedelta(hours=12)  # a working day; then log in again
LOCKOUT = accounts.LockoutPolicy()


@dataclass(frozen=True)
class Identity:
    """Who is asking: a staff user, or the bootstrap token."""

    username: str
    role: accounts.Role
    user_id: int | None = None
    csrf_token: str | None = None  # a console session's; API tokens need none

    @property
    def is_admin(self) -> bool:
        return self.role == accounts.Role.ADMIN


BOOTSTRAP = Identity("bootstrap-token", accounts.Role.ADMIN)


class LoginRefused(Exception):
    """Wrong username or password, or a locked account (`locked_until` then says until when)."""

    def __init__(self, locked_until: datetime | None = None) -> None:
        super().__init__("wrong username or password")
        self.locked_until = locked_until


def _view(user: accounts.StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role.value,
        "has_api_token": user.api_token_hash is not None,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "created_at": user.created_at.isoformat(),
    }


def add_user(
    uow: UnitOfWork, username: str, password: str, role: str, now: datetime, actor: str
) -> dict[str, Any]:
    name = accounts.check_new_credentials(username, password)
    with uow:
        if uow.staff_accounts.by_username(name) is not None:
            raise Conflict(f"a staff user named {name} already exists", field="username")
        user = accounts.StaffUser(
            username=name,
            password_hash=credentials.hash_password(password),
            role=accounts.Role(role),
            created_at=now,
        )
        uow.staff_accounts.add(user)
        uow.flush()
        uow.events.record(
            "staff_user_added", Actor.STAFF, now, actor_ref=actor, data={"username": name}
        )
        uow.commit()
        return _view(user)


def list_users(uow: UnitOfWork, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        users, total = uow.staff_accounts.list(limit, offset)
        return views.page([_view(user) for user in users], total, offset)


def login(uow: UnitOfWork, username: str, password: str, now: datetime) -> tuple[str, Identity]:
    """A new session's cookie value and who it is, or LoginRefused."""
    name = username.strip().lower()
    with uow:
        user = uow.staff_accounts.by_username(name)
        password_ok = credentials.verify_password(user.password_hash if user else None, password)
        if user is None:
            raise LoginRefused()
        result = user.attempt_login(password_ok, now, LOCKOUT)
        if not result.allowed:
            kind = "staff_locked_out" if result.locked_until else "staff_login_failed"
            uow.events.record(kind, Actor.STAFF, now, actor_ref=name)
            uow.commit()
            raise LoginRefused(result.locked_until)
        token, csrf = credentials.new_token(), credentials.new_token()
        assert user.id is not None
        uow.staff_accounts.start_session(
            credentials.token_hash(token), user.id, csrf, now, now + SESSION_LIFETIME
        )
        uow.events.record("staff_logged_in", Actor.STAFF, now, actor_ref=name)
        uow.commit()
        return token, Identity(name, user.role, user.id, csrf)


def session_identity(uow: UnitOfWork, token: str, now: datetime) -> Identity | None:
    with uow:
        found = uow.staff_accounts.session_user(credentials.token_hash(token), now)
        if found is None:
            return None
        user, csrf = found
        return Identity(user.username, user.role, user.id, csrf)


def token_identity(uow: UnitOfWork, token: str) -> Identity | None:
    with uow:
        user = uow.staff_accounts.by_api_token(credentials.token_hash(token))
        return None if user is None else Identity(user.username, user.role, user.id)


def logout(uow: UnitOfWork, token: str, now: datetime, actor: str) -> None:
    with uow:
        uow.staff_accounts.end_session(credentials.token_hash(token))
        uow.events.record("staff_logged_out", Actor.STAFF, now, actor_ref=actor)
        uow.commit()


def issue_api_token(uow: UnitOfWork, user_id: int, now: datetime, actor: str) -> str:
    """A new personal API token for the user, shown once; the previous one stops working."""
    token = credentials.new_token()
    with uow:
        user = uow.staff_accounts.by_id(user_id)
        if user is None:
            raise NotFound("staff user", user_id)
        user.set_api_token(credentials.token_hash(token))
        uow.events.record(
            "staff_api_token_issued",
            Actor.STAFF,
            now,
            actor_ref=actor,
            data={"username": user.username},
        )
        uow.commit()
    return token
