"""How the backend reaches a patient. The wording lives in Rasa; the backend only says what happened.

`RasaMessenger` starts the message through Rasa's trigger_intent API, so the same conversation tracker
holds the offer and the patient's answer. `RecordingMessenger` is the in-process stand-in for tests.
"""

from __future__ import annotations

import logging
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

    def __init__(self, reason: str, permanent: bool, carrier_opted_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # permanent: this message will never go out (frees the offer's seat);
        # otherwise the dispatcher tries again later and nothing is lost
        self.permanent = permanent
        self.carrier_opted_out = carrier_opted_out


class Messenger(Protocol):
    def send(self, message: OutboundMessage) -> None: ...


def mask_phone(phone: str) -> str:
    return phone[:2] + "*" * max(0, len(phone) - 6) + phone[-4:] if len(phone) > 6 else "***"


@dataclass
class RecordingMessenger:
    """Keeps what it was asked to send; can be told to fail for a phone number."""

    sent: list[OutboundMessage] = field(default_factory=list)
    failures: dict[str, SendError] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: OutboundMessage) -> None:
        with self._lock:
            failure = self.failures.get(message.phone)
            if failure is not None:
                raise failure
            self.sent.append(message)

    def to(self, phone: str) -> list[OutboundMessage]:
        return [m for m in self.sent if m.phone == phone]


class RasaMessenger:
    def __init__(self, rasa_url: str, token: str, timeout: float = 15.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.token = token
        self.client = httpx.Client(timeout=timeout)

    def send(self, message: OutboundMessage) -> None:
        # Rasa does not decode %2B in the conversation id, so the "+" must stay literal.
        url = f"{self.rasa_url}/conversations/{message.phone}/trigger_intent"
        try:
            response = self.client.post(
                url,
                params={"output_channel": "twilio", "token": self.token},
                json={"name": INTENT_BY_KIND[message.kind], "entities": message.entities()},
            )
        except httpx.HTTPError as exc:
            raise SendError(f"Rasa unreachable: {type(exc).__name__}", permanent=False) from exc
        if response.status_code == 200:
            return
        body = response.text[:500]
        if response.status_code == 500:
            # the connector raised while sending: Twilio refused this message
            opted_out = "21610" in body
            raise SendError(
                f"Rasa could not send (HTTP 500){' : carrier opt-out 21610' if opted_out else ''}",
                permanent=True,
                carrier_opted_out=opted_out,
            )
        raise SendError(f"Rasa answered HTTP {response.status_code}", permanent=False)
