"""Staff accounts: credentials and the lockout, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from waitlist.domain.accounts import LockoutPolicy, Role, StaffUser, check_new_credentials
from waitlist.domain.model import DomainError

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
POLICY = LockoutPolicy(attempts=5, lock_for=timedelta(minutes=15))


def user() -> StaffUser:
    return StaffUser(username="maria", password_hash="x", role=Role.FRONT_DESK, created_at=NOW)


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one() -> None:
    maria = user()
    results = [maria.attempt_login(False, NOW, POLICY) for _ in range(5)]
    assert [r.allowed for r in results] == [False] * 5
    assert results[-1].locked_until == NOW + timedelta(minutes=15)
    assert maria.attempt_login(True, NOW + timedelta(minutes=14), POLICY).allowed is False
    assert maria.attempt_login(True, NOW + timedelta(minutes=15), POLICY).allowed is True


def test_a_good_login_resets_the_count() -> None:
    maria = user()
    for _ in range(4):
        maria.attempt_login(False, NOW, POLICY)
    assert maria.attempt_login(True, NOW, POLICY).allowed
    assert maria.failed_logins == 0
    for _ in range(4):
        assert maria.attempt_login(False, NOW, POLICY).locked_until is None


def test_a_disabled_account_never_logs_in() -> None:
    maria = user()
    maria.disabled_at = NOW
    assert maria.attempt_login(True, NOW, POLICY).allowed is False


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("m", "long enough password"),
        ("maria jones", "long enough password"),
        ("maria", "short"),
        ("maria.jones.2", "Maria.Jones.2"),
    ],
)
def test_weak_credentials_are_refused(username: str, password: str) -> None:
    with pytest.raises(DomainError):
        check_new_credentials(username, password)


def test_usernames_are_stored_in_lower_case() -> None:
    assert check_new_credentials(" Maria.J ", "correct horse battery") == "maria.j"
