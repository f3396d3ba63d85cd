"""Request bodies of the HTTP APIs. Pydantic checks them and names the field that is wrong."""

from __future__ import annotations

from datetime import date, time
from typing import Literal

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def normalise_phone(value: str) -> str:
    """A real, dialable E.164 number (e.g. +12025550123), or ValueError."""
    if not isinstance(value, str) or not value.strip().startswith("+"):
        raise ValueError("must be an E.164 number starting with + and the country code")
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateProvider(Strict):
    name: str = Field(min_length=1, max_length=200)
    provider_type: str = Field(min_length=1, max_length=100)


class CreatePatient(Strict):
    phone: str
    # first name or initials only: texts never carry a full name
    display_name: str = Field(min_length=1, max_length=30)
    preferred_language: Literal["en", "es"] = "en"
    consent_source: str = Field(default="staff_entry", min_length=1, max_length=100)

    _phone = field_validator("phone")(classmethod(lambda cls, v: normalise_phone(v)))


class CorrectPatientNumber(Strict):
    # the patient's right number: a new one, or the current one confirmed by staff
    phone: str

    _phone = field_validator("phone")(classmethod(lambda cls, v: normalise_phone(v)))


class CallbackDone(Strict):
    note: str | None = Field(None, max_length=2000)


class Login(Strict):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class CreateStaffUser(Strict):
    username: str = Field(min_length=2, max_length=40)
    password: str = Field(min_length=12, max_length=1000)
    role: Literal["front_desk", "admin"] = "front_desk"


class EntryFields(Strict):
    provider_ids: list[int] | None = None
    provider_type: str | None = Field(default=None, min_length=1, max_length=100)
    location: str | None = Field(default=None, min_length=1, max_length=200)
    current_appointment_at: AwareDatetime | None = None
    not_before: date | None = None
    not_after: date | None = None
    days_of_week: list[Weekday] | None = None
    earliest_time: time | None = None
    latest_time: time | None = None
    urgent: bool | None = None
    manual_boost: int | None = Field(default=None, ge=0, le=40)
    notes: str | None = Field(default=None, max_length=500)


class CreateEntry(EntryFields):
    patient_id: int


class UpdateEntry(EntryFields):
    pass


class Boost(Strict):
    manual_boost: int = Field(ge=0, le=40)


class CreateCancellation(Strict):
    provider_id: int
    location: str = Field(min_length=1, max_length=200)
    slot_start: AwareDatetime
    slot_end: AwareDatetime


class Reply(Strict):
    phone: str
    message_id: str = Field(min_length=1, max_length=100)
    # the language the patient wrote this message in; the backend keeps the patient's up to date
    language: Literal["en", "es"] | None = None

    _phone = field_validator("phone")(classmethod(lambda cls, v: normalise_phone(v)))


class DeferReply(Reply):
    not_before: date


class AvailabilityReply(Reply):
    days_of_week: list[Weekday] | None = None
    time_of_day: Literal["morning", "afternoon", "evening", "any"] | None = None
    not_after: date | None = None


class HandoffReply(Reply):
    reason: Literal["talk_to_person", "wrong_number", "counter_proposal", "emergency", "bereavement"]
    # the patient's words, for the call-back queue
    text: str | None = Field(None, max_length=1600)
