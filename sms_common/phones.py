"""Phone numbers: the E.164 check and the masking every log line uses."""

from __future__ import annotations

import re

E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_IN_TEXT = re.compile(r"\+?\d{7,15}")


def is_e164(phone: str | None) -> bool:
    """``+`` then 7 to 15 digits, no leading zero: the only form Twilio and we store."""
    return phone is not None and E164_PATTERN.match(phone) is not None


def mask_phone(phone: str | None) -> str:
    """``+15551234567`` -> ``+1******4567``: logs never carry a full number."""
    if not phone:
        return "<none>"
    text = phone.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return "***"
    prefix = "+" if text.startswith("+") else ""
    if len(digits) <= 6:
        # too short to show any digit without showing most of it
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 5)}{digits[-4:]}"


def mask_phones_in_text(text: str) -> str:
    """Masks every phone-like number inside free text (a Twilio error message, say)."""
    return _PHONE_IN_TEXT.sub(lambda match: mask_phone(match.group(0)), text)
