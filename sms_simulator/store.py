"""In-memory state of the simulator: messages in both directions and injected faults.

Everything runs on one event loop, so plain containers need no locks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .twilio_format import API_VERSION, MESSAGE_INSTANCE_PATH, rfc2822

# Faults on sending (the Messages API answer): http_500, http_429, unsubscribed (21610), invalid
# (21211), slow (the answer comes after delay_seconds; the message exists at once, so a client that
# times out is "in doubt" about it). Faults on delivery: undelivered, failed. Faults on status
# callbacks: duplicate_callbacks (each posted twice), out_of_order_callbacks (last status first).
FAULT_KINDS = (
    "http_500",
    "http_429",
    "unsubscribed",
    "invalid",
    "slow",
    "undelivered",
    "failed",
    "duplicate_callbacks",
    "out_of_order_callbacks",
)
SEND_FAULTS = ("http_500", "http_429", "unsubscribed", "invalid", "slow")
# ErrorCode 30003 is "Unreachable destination handset".
DEFAULT_DELIVERY_ERROR = 30003
DELIVERY_ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
PRICE_PER_SEGMENT = "0.00790"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class SimMessage:
    sid: str
    account_sid: str
    direction: str  # "outbound-api", "outbound-reply" or "inbound"
    to: str
    from_: str | None
    body: str
    status: str
    seq: int
    messaging_service_sid: str | None = None
    media_urls: list[str] = field(default_factory=list)
    num_segments: int = 1
    status_callback: str | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    price_unit: str | None = None
    # Inbound only: the HTTP status the webhook (Rasa) answered, None if unreachable.
    webhook_status: int | None = None
    # the status callbacks already posted, to replay them as Twilio sometimes does
    reports: list[dict[str, str]] = field(default_factory=list)

    def set_status(self, status: str, error_code: int | None = None) -> None:
        now = utcnow()
        self.status = status
        self.date_updated = now
        if status in ("sent", "delivered", "undelivered") and self.date_sent is None:
            self.date_sent = now
        if status == "delivered":
            self.price = f"-{float(PRICE_PER_SEGMENT) * self.num_segments:.5f}"
            self.price_unit = "USD"
        if error_code is not None:
            self.error_code = error_code
            self.error_message = DELIVERY_ERROR_MESSAGES.get(error_code, "Delivery failed")

    def uri(self) -> str:
        return MESSAGE_INSTANCE_PATH.format(AccountSid=self.account_sid, Sid=self.sid)

    def to_resource(self) -> dict[str, Any]:
        """The Message resource exactly as Twilio's OpenAPI schema describes it."""
        base = self.uri()[: -len(".json")]
        return {
            "body": self.body,
            "num_segments": str(self.num_segments),
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "date_updated": rfc2822(self.date_updated),
            "price": self.price,
            "error_message": self.error_message,
            "uri": self.uri(),
            "account_sid": self.account_sid,
            "num_media": str(len(self.media_urls)),
            "status": self.status,
            "messaging_service_sid": self.messaging_service_sid,
            "sid": self.sid,
            "date_sent": rfc2822(self.date_sent),
            "date_created": rfc2822(self.date_created),
            "error_code": self.error_code,
            "price_unit": self.price_unit,
            "api_version": API_VERSION,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
        }

    def to_simulator_json(self) -> dict[str, Any]:
        """A compact view for the phone page and tests."""
        return {
            "sid": self.sid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "media_urls": list(self.media_urls),
            "num_segments": self.num_segments,
            "status_callback": self.status_callback,
            "webhook_status": self.webhook_status,
            "date_created": self.date_created.isoformat(),
            "date_updated": self.date_updated.isoformat(),
        }


@dataclass
class Fault:
    kind: str
    remaining: int
    to: str | None = None  # None: any recipient
    error_code: int | None = None
    # a fault with an end time lasts until then (an outage), whatever `remaining` says
    until: datetime | None = None
    delay_seconds: float = 10.0

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "to": self.to,
            "remaining": self.remaining,
            "error_code": self.error_code,
            "until": self.until.isoformat() if self.until else None,
            "delay_seconds": self.delay_seconds,
        }


class SimulatorStore:
    def __init__(self) -> None:
        self.messages: dict[str, SimMessage] = {}
        self.faults: list[Fault] = []
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def add(self, message: SimMessage) -> SimMessage:
        self.messages[message.sid] = message
        return message

    def get(self, sid: str) -> SimMessage | None:
        return self.messages.get(sid)

    def delete(self, sid: str) -> bool:
        return self.messages.pop(sid, None) is not None

    def ordered(self) -> list[SimMessage]:
        """Oldest first."""
        return sorted(self.messages.values(), key=lambda message: message.seq)

    def filter(
        self, to: str | None = None, from_: str | None = None, phone: str | None = None
    ) -> list[SimMessage]:
        result: Iterable[SimMessage] = self.ordered()
        if to:
            result = (message for message in result if message.to == to)
        if from_:
            result = (message for message in result if message.from_ == from_)
        if phone:
            result = (message for message in result if phone in (message.to, message.from_))
        return list(result)

    def numbers(self, clinic_numbers: set[str]) -> list[str]:
        """Patient numbers seen in either direction, most recently active first."""
        seen: dict[str, int] = {}
        for message in self.ordered():
            for number in (message.to, message.from_):
                if number and number not in clinic_numbers:
                    seen[number] = message.seq
        return sorted(seen, key=lambda number: -seen[number])

    def add_fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def take_fault(self, to: str, kinds: tuple[str, ...] = FAULT_KINDS) -> Fault | None:
        """Consumes one fault of these kinds for this recipient; number-specific faults first."""
        now = datetime.now(timezone.utc)
        self.faults = [fault for fault in self.faults if fault.active(now)]
        eligible = [fault for fault in self.faults if fault.kind in kinds]
        candidates = [fault for fault in eligible if fault.to == to] or [
            fault for fault in eligible if fault.to is None
        ]
        if not candidates:
            return None
        fault = candidates[0]
        if fault.until is None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
        return fault

    def reset(self) -> None:
        self.messages.clear()
        self.faults.clear()
