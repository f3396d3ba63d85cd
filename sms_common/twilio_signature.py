"""The X-Twilio-Signature check shared by both webhooks (Rasa's inbound, the backend's status).

Two details matter and are easy to get wrong, so they live here once:
- Twilio signs every form field, blank ones included (``Body=`` on an MMS, ``ErrorCode=``), while
  Sanic's ``request.form`` drops blank values; the form is parsed from the raw body instead.
- Behind a proxy the signed URL is the public one: ``PUBLIC_BASE_URL`` + path + query.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator


class FormParams(dict[str, list[str]]):
    """Form fields with every value, blank ones included."""

    @classmethod
    def parse(cls, body: bytes) -> FormParams:
        params = cls()
        text = body.decode("utf-8", errors="replace")
        for key, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        return params

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        # the name RequestValidator looks for on multi-value dicts
        return self[name]


def signed_url(public_base_url: str, path: str, query_string: str = "") -> str:
    """The URL Twilio signed: the public origin, then the path and query this server saw."""
    query = f"?{query_string}" if query_string else ""
    return public_base_url.rstrip("/") + path + query


def signature_is_valid(auth_token: str, url: str, params: FormParams, signature: str | None) -> bool:
    """True only for a signature made with `auth_token` over exactly this URL and form."""
    if not auth_token or not signature:
        return False
    try:
        return bool(RequestValidator(auth_token).validate(url, params, signature))
    except Exception:  # a malformed header is a refusal, never a crash
        return False
