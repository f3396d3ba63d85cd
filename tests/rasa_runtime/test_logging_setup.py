"""configure_logging: plain lines by default, JSON lines (python-json-logger) with LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sms_common.logging_setup import SANIC_LOGGERS, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces global handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    sanic = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in SANIC_LOGGERS
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in sanic.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
    logging.captureWarnings(False)


def test_json_lines(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    stream = io.StringIO()
    configure_logging("actions", stream=stream)
    logging.getLogger("actions.backend_client").info("offer %s accepted", 42)
    logging.getLogger("sanic.error").error("bind failed")
    logging.getLogger("quiet").debug("not at INFO")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message", "service"}
    assert first["level"] == "INFO"
    assert first["logger"] == "actions.backend_client"
    assert first["message"] == "offer 42 accepted"
    assert first["service"] == "actions"
    assert first["time"].startswith("20") and "T" in first["time"]
    # Sanic's loggers do not propagate under Rasa; they get the same format
    assert second["logger"] == "sanic.error" and second["message"] == "bind failed"


def test_json_lines_carry_tracebacks(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    stream = io.StringIO()
    configure_logging("rasa", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("rasa.core").exception("failed")
    (line,) = stream.getvalue().splitlines()  # one record, one line
    record = json.loads(line)
    assert record["service"] == "rasa" and "ValueError: boom" in record["exc_info"]


def test_plain_lines_by_default(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "warning")
    stream = io.StringIO()
    configure_logging("rasa", stream=stream)
    logging.getLogger("rasa.core").info("hidden below WARNING")
    logging.getLogger("rasa.core").warning("shown")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("WARNING rasa.core: shown")


# What PostgreSQL puts in a unique violation's message when two staff add the same patient at once
UNIQUE_DETAIL = "DETAIL:  Key (phone)=(+12025550123) already exists."


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_traceback_never_carries_a_full_phone_number(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch, log_format: str
) -> None:
    monkeypatch.setenv("LOG_FORMAT", log_format)
    stream = io.StringIO()
    configure_logging("backend", stream=stream)
    try:
        raise RuntimeError(f"duplicate key value violates unique constraint\n{UNIQUE_DETAIL}")
    except RuntimeError:
        logging.getLogger("waitlist.http").exception("POST /api/v1/patients failed")
    logging.getLogger("channels").info("reply from %s", "+34612345678")
    written = stream.getvalue()
    assert "2025550123" not in written and "612345678" not in written
    assert "+1******0123" in written and "+3******5678" in written
    assert "POST /api/v1/patients failed" in written  # the rest of the line is untouched
