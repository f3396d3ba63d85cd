"""How the backend reaches a patient. The wording lives in Rasa; the backend only says what happened.

`RasaMessenger` starts the message through Rasa's trigger_intent API, so the same conversation tracker
holds the offer and the patient's answer. `RecordingMessenger` is the in-process stand-in for tests.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

import httpx

log = logging.getLogger(__name__)

INTENT_BY_KIND = {
    "offer": "EXTERNAL_offer",
    "slot_filled": "EXTERNAL_slot_filled",
    "offer_withdrawn": "EXTERNAL_offer_withdrawn",
}


@dataclass(frozen=True)
class OutboundMessage:
    kind: str  # offer | slot_filled | offer_withdrawn
    ref: str  # one text, however often it is retried (the connector sends each ref once)
    phone: str
    language: str
    offer_id: int
    slot_date: str
    slot_time: str
    location: str
    hold_minutes: int

    def entities(self) -> dict[str, object]:
        return {
            "offer_id": self.offer_id,
            "slot_date": self.slot_date,
            "slot_time": self.slot_time,
            "location": self.location,
            "hold_minutes": self.hold_minutes,
            "language": self.language,
        }


class SendError(Exception):
    """The message did not go out."""

    def __init__(self, reason: str, permanent: bool, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # permanent: Twilio refused this number (21211, 21610, 21614...): the offer fails and its
        # seat is freed. Otherwise (Twilio 5xx/429/timeout, Rasa down) the dispatcher retries and
        # nothing is lost.
        self.permanent = permanent
        self.code = code


class Messenger(Protocol):
    def send(self, message: OutboundMessage) -> None: ...


@dataclass
class RecordingMessenger:
    """Keeps what it was asked to send; can be told to fail for a phone number, or for everyone
    (`outage`: Twilio or Rasa down)."""

    sent: list[OutboundMessage] = field(default_factory=list)
    failures: dict[str, SendError] = field(default_factory=dict)
    outage: SendError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: OutboundMessage) -> None:
        with self._lock:
            failure = self.outage or self.failures.get(message.phone)
            if failure is not None:
                raise failure
            self.sent.append(message)

    def to(self, phone: str) -> list[OutboundMessage]:
        return [m for m in self.sent if m.phone == phone]


# The connector raises "twilio-send-error kind=permanent code=21211 ..." (channels/twilio_sms.py);
# Rasa's trigger_intent answers 500 with that text inside its error message.
_SEND_ERROR = re.compile(r"twilio-send-error kind=(permanent|transient)(?: code=(\d+))?")


class RasaMessenger:
    def __init__(self, rasa_url: str, token: str, timeout: float = 20.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.token = token
        self.client = httpx.Client(timeout=timeout)

    def send(self, message: OutboundMessage) -> None:
        # Rasa does not decode %2B in the conversation id, so the "+" must stay literal.
        url = f"{self.rasa_url}/conversations/{message.phone}/trigger_intent"
        try:
            response = self.client.post(
                url,
                params={"output_channel": "twilio", "token": self.token, "ref": message.ref},
                json={"name": INTENT_BY_KIND[message.kind], "entities": message.entities()},
            )
        except httpx.HTTPError as exc:
            raise SendError(f"Rasa unreachable: {type(exc).__name__}", permanent=False) from exc
        if response.status_code == 200:
            return
        match = _SEND_ERROR.search(response.text[:2000])
        if match is not None and match.group(1) == "permanent":
            code = match.group(2)
            raise SendError(f"Twilio refused the number (code {code})", permanent=True, code=code)
        if match is not None:
            raise SendError(f"Twilio did not take the text ({match.group(0)})", permanent=False)
        raise SendError(f"Rasa answered HTTP {response.status_code}", permanent=False)
