"""Staff accounts: who may use the console and the staff API, and the lockout after bad passwords.

Pure rules, no I/O: hashing passwords and tokens is the adapters' job (adapters/secrets_hashing.py).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from waitlist.domain.model import DomainError

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD_LENGTH = 12


class Role(str, enum.Enum):
    FRONT_DESK = "front_desk"  # works the waitlist and the slots
    ADMIN = "admin"  # also manages staff accounts


@dataclass(frozen=True)
class LockoutPolicy:
    """After `attempts` wrong passwords in a row the account refuses every login for `lock_for`."""

    attempts: int = 5
    lock_for: timedelta = timedelta(minutes=15)


def check_new_credentials(username: str, password: str) -> str:
    """The username as stored (lower case), or DomainError naming what is wrong."""
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise DomainError("a username has 2 to 40 letters, digits, dots, dashes or underscores")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() == name:
        raise DomainError("the password must not be the username")
    return name


@dataclass(frozen=True)
class LoginResult:
    allowed: bool
    locked_until: datetime | None = None


@dataclass
class StaffUser:
    username: str
    password_hash: str
    role: Role
    created_at: datetime
    failed_logins: int = 0
    locked_until: datetime | None = None
    api_token_hash: str | None = None
    disabled_at: datetime | None = None
    id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def attempt_login(self, password_ok: bool, now: datetime, policy: LockoutPolicy) -> LoginResult:
        """Count a login attempt. A locked or disabled account refuses even the right password."""
        if self.disabled_at is not None:
            return LoginResult(False)
        if self.is_locked(now):
            return LoginResult(False, self.locked_until)
        if password_ok:
            self.failed_logins, self.locked_until = 0, None
            return LoginResult(True)
        self.failed_logins += 1
        if self.failed_logins >= policy.attempts:
            self.failed_logins, self.locked_until = 0, now + policy.lock_for
            return LoginResult(False, self.locked_until)
        return LoginResult(False)

    def set_api_token(self, token_hash: str) -> None:
        """A new personal token replaces the old one, which stops working at once."""
        self.api_token_hash = token_hash
