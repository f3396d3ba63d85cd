"""Small client for the backend's reply API (`docs/reply-api.md`)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from sms_common.phones import mask_phone

__all__ = ["BackendClient", "BackendReply", "BackendUnavailable", "ReplyApi", "mask_phone"]

logger = logging.getLogger(__name__)

DEFAULT_BACKEND_URL = "http://127.0.0.1:8000"
API_PREFIX = "/internal/v1"
# One attempt may wait this long; the backend bounds its own lock waits at 10 s (lock_timeout).
DEFAULT_TIMEOUT_SECONDS = 12.0
# Retries (same message id, so the backend applies the reply once) go on until this deadline,
# longer than the backend's slowest claim, so the patient hears the real outcome. It stays well
# under Rasa's conversation lock lifetime (60 s).
DEFAULT_DEADLINE_SECONDS = 30.0
DEFAULT_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 2.0


class BackendUnavailable(Exception):
    """The backend could not give a usable answer (down, 5xx, timeout, bad reply)."""


@dataclass(frozen=True)
class BackendReply:
    """The common answer shape: outcome, offer and patient (plus `not_before`)."""

    outcome: str
    offer: dict[str, Any] | None = None
    patient: dict[str, Any] | None = None
    not_before: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Any) -> BackendReply:
        """Validates the minimum we rely on, so actions never see a half answer."""
        if not isinstance(body, dict) or not isinstance(body.get("outcome"), str):
            raise BackendUnavailable("backend answer has no outcome")
        offer = body.get("offer")
        patient = body.get("patient")
        return cls(
            outcome=body["outcome"],
            offer=offer if isinstance(offer, dict) else None,
            patient=patient if isinstance(patient, dict) else None,
            not_before=body.get("not_before"),
            raw=body,
        )

    @property
    def language(self) -> str | None:
        """The patient's language when the backend knows the phone."""
        if self.patient and isinstance(self.patient.get("language"), str):
            return self.patient["language"]
        return None


class ReplyApi(Protocol):
    """What the actions need from the backend; tests pass a fake."""

    async def reply(
        self, kind: str, phone: str, message_id: str, **fields: Any
    ) -> BackendReply: ...

    async def current_offer(self, phone: str) -> BackendReply: ...


class BackendClient:
    """HTTP client for `/internal/v1/` with bounded retries."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: float | None = None,
        backoff: float = DEFAULT_BACKOFF_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("BACKEND_URL") or DEFAULT_BACKEND_URL).rstrip(
            "/"
        )
        self._token = token if token is not None else os.environ.get("ACTIONS_API_TOKEN", "")
        self._timeout = timeout
        if deadline is None:
            deadline = float(os.environ.get("ACTION_BACKEND_DEADLINE_SECONDS") or 0) or (
                DEFAULT_DEADLINE_SECONDS
            )
        self._deadline = deadline
        self._backoff = backoff
        self._transport = transport
        # One connection pool per event loop: building a client (and its SSL context) per call
        # cost about 20 ms of every action turn.
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
            self._client_loop = loop
        return self._client

    async def reply(self, kind: str, phone: str, message_id: str, **fields: Any) -> BackendReply:
        """POST /replies/{kind}. Retrying is safe: `message_id` makes it idempotent."""
        body = {"phone": phone, "message_id": message_id, **fields}
        return await self._request("POST", f"/replies/{kind}", json=body)

    async def current_offer(self, phone: str) -> BackendReply:
        """GET /offers/current for the details questions and weak accepts."""
        return await self._request("GET", "/offers/current", params={"phone": phone})

    async def _request(self, method: str, path: str, **kwargs: Any) -> BackendReply:
        """Retry until the deadline: a timeout may mean the claim is still running, and the same
        message id makes the retry return that claim's outcome instead of claiming again."""
        headers = {"Authorization": f"Bearer {self._token}"}
        url = f"{self.base_url}{API_PREFIX}{path}"
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._deadline
        client = self._http()
        attempt = 0
        last_error = ""
        while True:
            attempt += 1
            remaining = give_up_at - loop.time()
            timeout = max(0.5, min(self._timeout, remaining))
            try:
                response = await client.request(
                    method, url, headers=headers, timeout=timeout, **kwargs
                )
            except httpx.HTTPError as exc:
                # down, restarting, or slow: nothing here tells us the reply was not applied
                last_error = type(exc).__name__
            else:
                if response.status_code >= 500:
                    last_error = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    # 4xx is our bug or a config problem (token): retrying cannot help.
                    raise BackendUnavailable(
                        f"{method} {path}: HTTP {response.status_code} {_error_text(response)}"
                    )
                else:
                    try:
                        payload = response.json()
                    except ValueError as exc:
                        raise BackendUnavailable(f"{method} {path}: invalid JSON") from exc
                    return BackendReply.from_json(payload)
            pause = min(MAX_BACKOFF_SECONDS, self._backoff * 2 ** (attempt - 1))
            if loop.time() + pause >= give_up_at:
                raise BackendUnavailable(f"{method} {path}: {last_error} after {attempt} attempts")
            await asyncio.sleep(pause)


def _error_text(response: httpx.Response) -> str:
    """The contract's error body names the field; useful in logs, never shown to patients."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return f"{body.get('error', '')} (field: {body.get('field', '-')})"
    return ""
