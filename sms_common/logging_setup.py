"""One logging set-up for our processes: plain lines by default, JSON lines with LOG_FORMAT=json.

Every process writes to stderr; `make run` collects each child's output into `.data/logs/<name>.log`
(rotated), so a process never opens log files itself. Importable from both virtual environments:
it needs only the standard library and python-json-logger.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from sms_common.phones import mask_phones_in_text

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Sanic logs through these and Rasa stops them propagating to the root logger, so they get the
# handler directly or their lines would bypass the format (the last two exist in newer Sanic).
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")
# HTTP clients log every request's URL at INFO: a URL can carry a phone number
# (/conversations/+1.../trigger_intent) and a token (?token=). The scheduler logs every tick.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "aiohttp.access", "apscheduler")


def json_formatter(service: str) -> logging.Formatter:
    """{"time", "level", "logger", "message", "service"} and any `extra` fields, one per line."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields={"service": service},
        timestamp="time",  # ISO 8601, UTC
    )


class PhoneMaskingFormatter(logging.Formatter):
    """Masks phone numbers in the whole formatted record, traceback included.

    Our own lines mask numbers where they are written; this catches what we do not write: a
    library's exception text, such as PostgreSQL's "Key (phone)=(+1...) already exists".
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_phones_in_text(self.inner.format(record))


def configure_logging(
    service: str,
    level: str | int | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Replace the root logger's handlers with one stderr handler in the LOG_FORMAT format.

    `service` names the process in JSON lines ("rasa", "actions", "backend"). `level` defaults to
    LOG_LEVEL (INFO). Returns the handler, for callers that attach it to non-propagating loggers.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        handler.setFormatter(PhoneMaskingFormatter(json_formatter(service)))
    else:
        handler.setFormatter(PhoneMaskingFormatter(logging.Formatter(TEXT_FORMAT)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "").strip().upper() or logging.INFO)
    route_sanic_loggers(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # library warnings become records too, so a JSON log holds nothing but JSON lines
    logging.captureWarnings(True)
    return handler


def route_sanic_loggers(handler: logging.Handler) -> None:
    """Send Sanic's loggers to `handler` only.

    Call it again once a Sanic app exists: an app created with configure_logging=True (Rasa's)
    installs Sanic's own console handlers on these loggers.
    """
    for name in SANIC_LOGGERS:
        sanic_logger = logging.getLogger(name)
        sanic_logger.handlers = [handler]
        sanic_logger.propagate = False
