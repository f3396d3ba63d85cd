"""The staff API's answers as /docs/openapi.json describes them. Nothing builds these models: the
views (service_layer/views.py) shape the JSON, and the contract test checks that every answer
matches what is written here. Fields not listed may be added later without breaking a client."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, create_model

from waitlist.domain.model import CancellationStatus, EntryStatus, OfferState
from waitlist.entrypoints.schemas import Language, Weekday

# "HH:MM" in the clinic's zone: not JSON Schema's `time`, which wants seconds and an offset
ClockTime = Annotated[str, Field(pattern=r"^[0-2][0-9]:[0-5][0-9]$")]


class ProblemItem(BaseModel):
    detail: str
    field: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with every error in `errors` (`error` and `field` repeat the
    first one for clients written against the first version)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemItem]


class Provider(BaseModel):
    id: int
    name: str
    provider_type: str


class Patient(BaseModel):
    id: int
    phone: str = Field(description="E.164")
    display_name: str
    preferred_language: Language
    consent_source: str
    consented_at: datetime | None
    opted_out: bool
    opted_out_at: datetime | None
    wrong_number: bool
    wrong_number_at: datetime | None


class Entry(BaseModel):
    id: int
    patient_id: int
    status: EntryStatus
    provider_ids: list[int]
    provider_type: str | None
    location: str | None
    current_appointment_at: datetime | None
    not_before: date | None
    not_after: date | None
    days_of_week: list[Weekday]
    earliest_time: ClockTime | None
    latest_time: ClockTime | None
    urgent: bool
    manual_boost: int
    notes: str | None
    joined_at: datetime
    score: int | None = Field(None, description="only where the score applies (active entries)")
    score_parts: dict[str, int] | None = None


class Offer(BaseModel):
    id: int
    patient_id: int
    entry_id: int
    state: OfferState
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    delivery_status: str | None


class Cancellation(BaseModel):
    id: int
    status: CancellationStatus
    provider_id: int
    location: str
    slot_start: datetime
    slot_end: datetime
    filled_by_patient_id: int | None
    created_at: datetime
    closed_at: datetime | None
    # why the latest batch had its size and hold (None before the first batch)
    batch_reason: str | None
    offers: list[Offer]


class Event(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_ref: str | None
    kind: str
    patient_id: int | None
    entry_id: int | None
    cancellation_id: int | None
    offer_id: int | None
    data: dict[str, object]


class Why(BaseModel):
    cancellation_id: int
    status: CancellationStatus
    summary: str = Field(examples=["nobody eligible: 2 do not match the provider"])


class Seat(BaseModel):
    offer_id: int
    patient_id: int
    name: str
    phone: str = Field(description="masked: only the last digits show")
    state: OfferState
    text: Literal["queued", "sent", "delivered", "failed"] | None
    sent_at: datetime | None
    expires_at: datetime | None
    seconds_left: int | None


class BoardSlot(BaseModel):
    id: int
    location: str
    slot_start: datetime
    slot_end: datetime
    seats: list[Seat]
    next: str


class Board(BaseModel):
    now: datetime
    slots: list[BoardSlot]


class Booked(BaseModel):
    cancellation_id: int
    patient_id: int
    name: str
    phone: str
    provider: str
    location: str
    slot_start: datetime
    slot_end: datetime
    old_appointment_at: datetime | None
    booked_at: datetime
    overdue: bool


class Entered(BaseModel):
    cancellation_id: int
    schedule_entered_at: datetime | None
    schedule_entered_by: str | None


class Callback(BaseModel):
    id: int
    requested_at: datetime
    reason: str | None
    emergency: bool
    last_message: str | None
    patient_id: int
    name: str
    phone: str


class CallbackClosed(BaseModel):
    id: int
    done_at: datetime
    done_by: str
    note: str | None


class Messaging(BaseModel):
    paused: bool
    paused_since: datetime | None
    consecutive_failures: int
    last_error: str | None
    outbox_depth: int


class Figures(BaseModel):
    cancellations: int
    filled: int
    aborted: int
    fill_rate: float | None
    median_minutes_to_fill: float | None
    p90_minutes_to_fill: float | None
    offers_sent: int
    offers_per_fill: float | None
    acceptance_rate: float | None
    opt_outs: int
    delivery_failures: int


class Day(Figures):
    day: date


class FillBucket(BaseModel):
    label: str = Field(examples=["15-30 min"])
    up_to_minutes: int | None = Field(description="null: the last bucket, without an end")
    filled: int


class Stats(Figures):
    from_: date = Field(alias="from")
    to: date
    timezone: str
    time_to_fill: list[FillBucket]
    by_day: list[Day]


class History(BaseModel):
    patient: Patient
    entries: list[Entry]
    offers: list[dict[str, object]]
    transcript: dict[str, object]


class StaffUser(BaseModel):
    id: int
    username: str
    role: Literal["front_desk", "admin"]
    has_api_token: bool
    locked_until: datetime | None
    created_at: datetime


class ApiToken(BaseModel):
    user_id: int
    api_token: str = Field(description="shown once; keep it in a secret store")


def page_of(item: type[BaseModel]) -> type[BaseModel]:
    """`{items, total, next}`: the shape of every list, one model per kind of item."""
    return create_model(
        f"{item.__name__}Page",
        __doc__="One page of a list; `next` is the offset of the following page, null on the last.",
        items=(list[item], ...),  # type: ignore[valid-type]
        total=(int, Field(ge=0, description="how many there are in all")),
        next=(int | None, Field(ge=1)),
    )
