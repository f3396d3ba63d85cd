"""Request bodies of the HTTP APIs. Pydantic checks them and names the field that is wrong."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Language = Literal["en", "es"]
MAX_ID = 2**31 - 1  # PostgreSQL's integer, the type of every id column

# What /docs/openapi.json promises is what is checked here: every rule applies to the text as
# sent, and white space around it is stripped afterwards. A text must hold more than white space;
# \x1c-\x1f are white space to Python but not to pydantic's regex engine, so they are named and
# both read the pattern alike.
TEXT = r"[^\s\x1c-\x1f]"
BLANKS = r"[ \t\n\r]*"
# E.164 (+, country code, number: 7 to 15 digits), spaces, dots, dashes or brackets allowed
# between digits. Only a number libphonenumber knows as dialable passes the validator too.
E164 = rf"^{BLANKS}\+[1-9](?:[ .()-]*[0-9]){{6,14}}{BLANKS}$"


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


Phone = Annotated[
    str,
    Field(
        pattern=E164,
        json_schema_extra={"format": "phone"},
        description="a dialable number in E.164, e.g. +12025550123",
        examples=["+12025550123"],
    ),
    AfterValidator(normalise_phone),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# A time of day on the clinic's clock, HH:MM (seconds allowed). Not JSON Schema's `time`, which
# carries a UTC offset: an offset means nothing for "not before 9 in the morning", and a time
# with one could not be compared with one without.
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


def clock_time(value: object) -> time:
    if not isinstance(value, str) or re.fullmatch(CLOCK, value) is None:
        raise ValueError("must be a time of day on the clinic's clock, HH:MM")
    return time.fromisoformat(value)


ClockTime = Annotated[
    time,
    PlainValidator(clock_time),
    WithJsonSchema({"type": "string", "pattern": CLOCK, "examples": ["09:30"]}),
]


def text(max_length: int, **kwargs: object) -> object:
    """A text field: 1 to `max_length` characters, not only white space."""
    return Field(min_length=1, max_length=max_length, pattern=TEXT, **kwargs)  # type: ignore[arg-type]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _strip(self) -> Strict:
        # after the rules, so that they judge the text as sent, as the document describes it
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, value.strip())
        return self


class CreateProvider(Strict):
    name: str = text(200, examples=["Dr. Lee"])
    provider_type: str = text(100, examples=["dermatology"])


class CreatePatient(Strict):
    phone: Phone
    # first name or initials only: texts never carry a full name
    display_name: str = text(30, examples=["Ana"])
    preferred_language: Language = "en"
    consent_source: str = text(100, default="staff_entry")


class CorrectPatientNumber(Strict):
    # the patient's right number: a new one, or the current one confirmed by staff
    phone: Phone


class CallbackDone(Strict):
    note: str | None = Field(None, max_length=2000)


class Login(Strict):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class CreateStaffUser(Strict):
    # the account's rules (domain/accounts.py), on the stripped text; stored in lower case
    username: str = Field(pattern=rf"^{BLANKS}[A-Za-z0-9][A-Za-z0-9._-]{{1,39}}{BLANKS}$")
    # 12 characters or more once stripped: a first and a last that are not white space
    password: str = Field(
        min_length=12,
        max_length=1000,
        pattern=rf"^[\s\x1c-\x1f]*{TEXT}[\s\S]{{10,}}{TEXT}[\s\x1c-\x1f]*$",
        description="at least 12 characters, not the username",
    )
    role: Literal["front_desk", "admin"] = "front_desk"


class EntryFields(Strict):
    provider_ids: list[Id] | None = Field(None, description="any of these; empty or null: any")
    provider_type: str | None = text(100, default=None)
    location: str | None = text(200, default=None)
    current_appointment_at: AwareDatetime | None = None
    not_before: date | None = None
    not_after: date | None = None
    days_of_week: list[Weekday] | None = None
    earliest_time: ClockTime | None = None
    latest_time: ClockTime | None = None
    urgent: bool | None = None
    manual_boost: int | None = Field(default=None, ge=0, le=40)
    notes: str | None = Field(default=None, max_length=500)


class CreateEntry(EntryFields):
    patient_id: Id


class UpdateEntry(EntryFields):
    pass


class Boost(Strict):
    manual_boost: int = Field(ge=0, le=40)


class CreateCancellation(Strict):
    provider_id: Id
    location: str = text(200, examples=["Main Street"])
    slot_start: AwareDatetime
    slot_end: AwareDatetime


class Reply(Strict):
    phone: str
    message_id: str = Field(min_length=1, max_length=100)
    # the language the patient wrote this message in; the backend keeps the patient's up to date
    language: Language | None = None

    _phone = field_validator("phone")(classmethod(lambda cls, v: normalise_phone(v)))


class DeferReply(Reply):
    not_before: date


class AvailabilityReply(Reply):
    days_of_week: list[Weekday] | None = None
    time_of_day: Literal["morning", "afternoon", "evening", "any"] | None = None
    not_after: date | None = None


class HandoffReply(Reply):
    reason: Literal[
        "talk_to_person", "wrong_number", "counter_proposal", "emergency", "bereavement"
    ]
    # the patient's words, for the call-back queue
    text: str | None = Field(None, max_length=1600)
