"""`make run`'s secrets: internal tokens generated once and kept in DATA_DIR/secrets.env, and a
refusal to start a production set-up on a missing, published or short secret."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

import launcher.__main__ as launcher_main
from launcher.secrets import (
    ALL_TOKENS,
    INTERNAL_TOKENS,
    MIN_LENGTH,
    SECRETS_FILE,
    apply_secrets_policy,
    exposure_reasons,
    is_loopback_host,
    read_secrets_file,
)
from launcher.stack import Stack, compose_env

LONG = {
    "STAFF_API_TOKEN": "staff-0123456789abcdefghijklmnop",
    "ACTIONS_API_TOKEN": "actions-0123456789abcdefghijklmnop",
    "RASA_API_TOKEN": "rasa-0123456789abcdefghijklmnop",
}
# a real deployment: Twilio credentials and a public origin, every value long and our own
PRODUCTION = {
    "TWILIO_ACCOUNT_SID": "AC" + "5" * 32,
    "TWILIO_AUTH_TOKEN": "f" * 32,
    "TWILIO_FROM_NUMBER": "+12025550100",
    "TWILIO_API_BASE_URL": "https://api.twilio.com",
    "PUBLIC_BASE_URL": "https://sms.example-clinic.org",
    **LONG,
}


def test_development_generates_the_internal_tokens_once(
    clean_environment: None, tmp_path: Path
) -> None:
    env = compose_env()
    assert apply_secrets_policy(env, tmp_path) == []
    path = tmp_path / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = read_secrets_file(path)
    assert set(stored) == set(INTERNAL_TOKENS)  # never the staff token
    for name in INTERNAL_TOKENS:
        assert env[name] == stored[name]
        assert len(env[name]) >= MIN_LENGTH and not env[name].startswith("dev-")
    assert env["STAFF_API_TOKEN"] == "dev-staff-token"  # the console and demo use it locally

    again = compose_env()
    assert apply_secrets_policy(again, tmp_path) == []
    assert {name: again[name] for name in INTERNAL_TOKENS} == stored  # reused, not regenerated
    assert read_secrets_file(path) == stored


def test_a_set_token_wins_and_is_not_stored(clean_environment: None, tmp_path: Path) -> None:
    env = compose_env({"RASA_API_TOKEN": LONG["RASA_API_TOKEN"]})
    apply_secrets_policy(env, tmp_path)
    assert env["RASA_API_TOKEN"] == LONG["RASA_API_TOKEN"]
    assert "RASA_API_TOKEN" not in read_secrets_file(tmp_path / SECRETS_FILE)
    assert LONG["RASA_API_TOKEN"] not in (tmp_path / SECRETS_FILE).read_text()


def test_a_loose_secrets_file_is_tightened(clean_environment: None, tmp_path: Path) -> None:
    apply_secrets_policy(compose_env(), tmp_path)
    path = tmp_path / SECRETS_FILE
    path.chmod(0o644)
    apply_secrets_policy(compose_env(), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_production_with_long_values_of_its_own_starts(
    clean_environment: None, tmp_path: Path
) -> None:
    env = compose_env(PRODUCTION)
    assert exposure_reasons(env)  # it is production
    assert apply_secrets_policy(env, tmp_path) == []
    # the one token nobody set is generated, as in development
    assert read_secrets_file(tmp_path / SECRETS_FILE).keys() == {"ACTION_SERVER_TOKEN"}
    assert len(env["ACTION_SERVER_TOKEN"]) >= MIN_LENGTH


@pytest.mark.parametrize("name", [*ALL_TOKENS, "TWILIO_AUTH_TOKEN"])
@pytest.mark.parametrize(
    ("kind", "value"),
    [("published", "dev-0123456789abcdefghijklmnopqr"), ("short", "s3cret-but-short")],
)
def test_each_refusal_names_the_variable_never_the_value(
    clean_environment: None, tmp_path: Path, name: str, kind: str, value: str
) -> None:
    if name == "TWILIO_AUTH_TOKEN" and kind == "published":
        value = "simulator-auth-token"
    env = compose_env({**PRODUCTION, name: value})
    problems = apply_secrets_policy(env, tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(name)
    assert value not in problems[0]


@pytest.mark.parametrize("name", ["STAFF_API_TOKEN", "TWILIO_AUTH_TOKEN"])
def test_production_refuses_a_missing_secret(
    clean_environment: None, tmp_path: Path, name: str
) -> None:
    settings = {key: value for key, value in PRODUCTION.items() if key != name}
    env = compose_env(settings)
    problems = apply_secrets_policy(env, tmp_path)
    assert len(problems) == 1 and problems[0].startswith(name), problems
    assert "STAFF_API_TOKEN" not in read_secrets_file(tmp_path / SECRETS_FILE)  # never generated


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"TWILIO_ACCOUNT_SID": "AC" + "5" * 32}, "TWILIO_ACCOUNT_SID"),
        ({"PUBLIC_BASE_URL": "https://sms.example-clinic.org"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "http://192.0.2.10:8000"}, "PUBLIC_BASE_URL"),
        ({"BACKEND_HOST": "0.0.0.0"}, "BACKEND_HOST"),
        ({"RASA_HOST": "192.0.2.10"}, "RASA_HOST"),
    ],
)
def test_what_counts_as_production(
    clean_environment: None, tmp_path: Path, settings: dict[str, str], reason: str
) -> None:
    env = compose_env(settings)
    assert any(reason in why for why in exposure_reasons(env))
    # published defaults are refused there: the staff token and the simulator's Twilio token
    problems = apply_secrets_policy(env, tmp_path)
    assert any(p.startswith("STAFF_API_TOKEN") for p in problems)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://localhost:8000", "http://127.9.9.9", "http://[::1]:8000"],
)
def test_loopback_public_urls_are_development(
    clean_environment: None, tmp_path: Path, url: str
) -> None:
    env = compose_env({"PUBLIC_BASE_URL": url})
    assert exposure_reasons(env) == []
    assert apply_secrets_policy(env, tmp_path) == []


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost") and is_loopback_host("127.1.2.3")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("example.org")
    assert not is_loopback_host("") and not is_loopback_host(None)


def test_make_run_refuses_with_exit_code_2(
    clean_environment: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("STAFF_API_TOKEN")  # the operator forgot it
    monkeypatch.setenv("RASA_API_TOKEN", "too-short-secret")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    def must_not_run(env: dict[str, str]) -> str:
        raise AssertionError("the database was prepared for a refused configuration")

    monkeypatch.setattr(launcher_main, "prepare_database", must_not_run)
    with caplog.at_level(logging.INFO, logger="launcher"):
        assert launcher_main.main() == 2
    problems = [r.getMessage() for r in caplog.records if r.getMessage().startswith("  ")]
    assert len(problems) == 2
    assert "STAFF_API_TOKEN" in problems[0] and "RASA_API_TOKEN" in problems[1]
    assert "too-short-secret" not in caplog.text


def test_no_token_on_any_command_line_and_each_process_gets_only_its_own(
    clean_environment: None, tmp_path: Path
) -> None:
    env = compose_env(LONG)
    stack = Stack.build(env, tmp_path)  # as the end-to-end tests build it, without a policy
    assert env["ACTION_SERVER_TOKEN"]  # filled for this stack's processes
    secrets = {name: env[name] for name in ALL_TOKENS}
    for service in stack.services.values():
        argv = " ".join(service.command)
        assert not any(value in argv for value in secrets.values()), service.name
    seen = {name: set(ALL_TOKENS) & set(stack.child_env(s)) for name, s in stack.services.items()}
    assert seen == {
        "simulator": set(),
        "backend": {"STAFF_API_TOKEN", "ACTIONS_API_TOKEN", "RASA_API_TOKEN"},
        "actions": {"ACTIONS_API_TOKEN", "ACTION_SERVER_TOKEN"},
        "rasa": {"RASA_API_TOKEN", "ACTION_SERVER_TOKEN"},
    }


def test_every_process_listens_on_loopback_by_default(clean_environment: None) -> None:
    env = compose_env()
    assert {env[h] for h in ("BACKEND_HOST", "RASA_HOST", "ACTIONS_HOST", "SIMULATOR_HOST")} == {
        "127.0.0.1"
    }
    assert env["ACTION_ENDPOINT_URL"] == "http://127.0.0.1:5055/webhook"
    assert env["RASA_URL"] == "http://127.0.0.1:5005"
