"""Twilio's wire formats: SIDs, dates, error bodies, SMS segments, request validation.

Request validation is driven by Twilio's own OpenAPI description of the Messages
resource (``twilio-messages-openapi.json`` beside this file), so the simulator accepts
what Twilio documents and nothing looser.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "2010-04-01"
OPENAPI_PATH = Path(__file__).with_name("twilio-messages-openapi.json")
MESSAGES_LIST_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE_INSTANCE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
MESSAGE_SCHEMA = "api.v2010.account.message"

E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY_LENGTH = 1600

# GSM 03.38 basic set; anything outside it (emoji, most accents) forces UCS-2 encoding.
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment) if moment is not None else None


def is_e164(number: str | None) -> bool:
    return number is not None and E164_PATTERN.match(number) is not None


def mask_phone(phone: str | None) -> str:
    """``+15551234567`` -> ``+1******4567``: logs never carry a full number."""
    if not phone:
        return "<none>"
    digits = re.sub(r"\D", "", phone)
    prefix = "+" if phone.strip().startswith("+") else ""
    if len(digits) <= 6:
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 5)}{digits[-4:]}"


def count_segments(body: str) -> int:
    """How many SMS segments carriers bill for this body (GSM-7 or UCS-2)."""
    if not body:
        return 1
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENDED for char in body):
        septets = sum(2 if char in _GSM7_EXTENDED else 1 for char in body)
        return 1 if septets <= 160 else -(-septets // 153)
    # UCS-2 counts UTF-16 code units: an emoji takes two.
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def error_body(code: int, message: str, status: int) -> dict[str, Any]:
    """The JSON body of every Twilio REST error."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class TwilioApiError(Exception):
    """An error answered in Twilio's shape."""

    status: int
    code: int
    message: str

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.status)


@lru_cache(maxsize=1)
def load_openapi() -> dict[str, Any]:
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follows a local ``$ref`` (``#/components/schemas/...``)."""
    reference = schema.get("$ref")
    if not reference:
        return schema
    node: Any = load_openapi()
    for part in reference.lstrip("#/").split("/"):
        node = node[part]
    return node


def create_message_schema() -> Mapping[str, Any]:
    operation = load_openapi()["paths"][MESSAGES_LIST_PATH]["post"]
    return operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]


def message_resource_schema() -> Mapping[str, Any]:
    return load_openapi()["components"]["schemas"][MESSAGE_SCHEMA]


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and "_" not in (parts.hostname or "")
    )


# Twilio's own codes for the parameters people get wrong most; others get a generic 400.
_SPECIFIC_CODES = {
    "To": (21211, "The 'To' number {value} is not a valid phone number."),
    "From": (
        21212,
        "The 'From' number {value} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
    ),
    "StatusCallback": (
        21609,
        "Invalid 'StatusCallback'. The StatusCallback URL {value} is not a valid URL.",
    ),
    "MessagingServiceSid": (21701, "The Messaging Service Sid {value} is invalid."),
}
GENERIC_INVALID_CODE = 400


def _invalid(name: str, value: str) -> TwilioApiError:
    code, template = _SPECIFIC_CODES.get(
        name, (GENERIC_INVALID_CODE, "Invalid parameter '{name}': {value}")
    )
    return TwilioApiError(400, code, template.format(name=name, value=value))


def _is_sender_or_number(name: str, value: str) -> bool:
    """To must be E.164; From may also be an alphanumeric sender ID (up to 11 characters)."""
    if is_e164(value):
        return True
    return name != "To" and re.fullmatch(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}", value) is not None


def _check_value(name: str, value: str, schema: Mapping[str, Any]) -> None:
    schema = resolve(schema)
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        raise _invalid(name, value)
    if kind == "boolean" and value.lower() not in ("true", "false"):
        raise _invalid(name, value)
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        raise _invalid(name, value)
    if kind == "number":
        try:
            float(value)
        except ValueError:
            raise _invalid(name, value) from None
    if kind == "string":
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            raise _invalid(name, value)
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise _invalid(name, value)
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise _invalid(name, value)
        ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
        if schema.get("format") == "uri" and not ignore_format and not _is_url(value):
            raise _invalid(name, value)
        if schema.get("format") == "phone-number" and not _is_sender_or_number(name, value):
            raise _invalid(name, value)


def validate_create_form(form: Mapping[str, Sequence[str]]) -> None:
    """Checks a Messages.json POST against the OpenAPI request schema and Twilio's rules.

    Raises TwilioApiError with Twilio's code; unknown parameters are ignored, as Twilio does.
    """
    schema = create_message_schema()

    def first(name: str) -> str:
        values = form.get(name) or [""]
        return values[0]

    for required in schema.get("required", []):
        if not first(required):
            if required == "To":
                raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
            raise TwilioApiError(
                400, GENERIC_INVALID_CODE, f"Missing required parameter {required}"
            )

    for name, property_schema in schema["properties"].items():
        values = [value for value in form.get(name, []) if value != ""]
        if not values:
            continue
        if property_schema.get("type") == "array":
            for value in values:
                _check_value(name, value, property_schema["items"])
        else:
            _check_value(name, values[0], property_schema)

    if not first("From") and not first("MessagingServiceSid"):
        raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
    if not first("Body") and not first("MediaUrl") and not first("ContentSid"):
        raise TwilioApiError(400, 21602, "Message body is required.")
    if len(first("Body")) > MAX_BODY_LENGTH:
        raise TwilioApiError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
