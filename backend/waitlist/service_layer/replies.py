"""Use cases for patient replies, called by the assistant's actions.

Each reply runs in one transaction together with the record of its message id, so a redelivered
message gets the first answer back and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from waitlist.config import Settings
from waitlist.domain import model
from waitlist.domain.model import Actor, ClaimOutcome
from waitlist.service_layer import offering, views
from waitlist.service_layer.unit_of_work import UnitOfWork

# A reply refers to the pending offer, or to an offer made at most this long ago.
REPLY_LOOKBACK = timedelta(hours=24)

TIME_OF_DAY: dict[str, tuple[time | None, time | None]] = {
    "morning": (None, time(12, 0)),
    "afternoon": (time(12, 0), time(17, 0)),
    "evening": (time(17, 0), None),
    "any": (None, None),
}


@dataclass
class ReplyContext:
    uow: UnitOfWork
    settings: Settings
    now: datetime
    phone: str
    patient: model.Patient | None = None

    def answer(self, outcome: str, offer: dict[str, Any] | None = None, **extra: Any) -> dict:
        self.uow.publish_events()  # the answer reflects what the events change (a fulfilled entry)
        patient = None
        if self.patient is not None:
            patient = {
                "language": self.patient.preferred_language,
                "opted_out": self.patient.opted_out,
                "on_waitlist": bool(
                    self.uow.waitlist.active_for_patient(self.patient.id or 0, for_update=False)
                ),
            }
        return {"outcome": outcome, "offer": offer, "patient": patient, **extra}

    def offer_view(self, offer: model.Offer, cancellation: model.Cancellation) -> dict[str, Any]:
        language = self.patient.preferred_language if self.patient else "en"
        return views.patient_offer_view(
            offer,
            cancellation,
            language,
            self.settings.clinic_timezone,
            int((offer.hold or self.settings.offering.hold).total_seconds() // 60),
            self.now,
        )

    def record(self, kind: str, **refs: Any) -> None:
        patient_id = self.patient.id if self.patient else None
        self.uow.events.record(kind, Actor.PATIENT, self.now, patient_id=patient_id, **refs)


Handler = Callable[[ReplyContext], dict[str, Any]]


def _run(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    kind: str,
    handler: Handler,
    language: str | None = None,
) -> dict[str, Any]:
    ctx = ReplyContext(uow=uow, settings=settings, now=now, phone=phone)
    with uow:
        uow.replies.lock(message_id)
        previous = uow.replies.get(message_id)
        if previous is not None:
            return previous
        ctx.patient = uow.patients.by_phone(phone, for_update=True)
        if ctx.patient is not None and language and ctx.patient.change_language(language):
            ctx.record("patient_language_changed", data={"language": language})
        response = ctx.answer("unknown_patient") if ctx.patient is None else handler(ctx)
        uow.replies.save(message_id, kind, response, now)
        uow.commit()
    offering.refill_freed_seats(uow, now, settings)
    return response


def _current_offer(ctx: ReplyContext) -> model.Offer | None:
    assert ctx.patient is not None and ctx.patient.id is not None
    offer = ctx.uow.offers.current_for_patient(ctx.patient.id)
    if offer is None:
        return None
    if not offer.is_pending and offer.created_at < ctx.now - REPLY_LOOKBACK:
        return None
    return offer


def _close_pending_offer(ctx: ReplyContext, state: model.OfferState, reason: str) -> bool:
    """Decline/withdraw the patient's pending offer, if any; its seat is refilled after commit."""
    offer = _current_offer(ctx)
    if offer is None or not offer.is_pending:
        return False
    cancellation = ctx.uow.cancellations.get_for_update(offer.cancellation_id)
    assert cancellation is not None
    offer = cancellation.offer(offer.id or 0)
    if not offer.is_pending:  # closed while we waited for the lock
        return False
    if state == model.OfferState.DECLINED:
        cancellation.decline(offer.id or 0, ctx.now, reason)
    else:
        cancellation.withdraw_offer(offer.id or 0, ctx.now, reason)
    return True


# ----------------------------------------------------------------------------------------------
# accept


def _accept(ctx: ReplyContext) -> dict[str, Any]:
    assert ctx.patient is not None
    if not ctx.patient.may_be_texted:
        return ctx.answer("opted_out")
    offer = _current_offer(ctx)
    if offer is None:
        return ctx.answer("no_open_offer")
    cancellation = ctx.uow.cancellations.get_for_update(offer.cancellation_id)
    assert cancellation is not None
    result = cancellation.claim(offer.id or 0, ctx.now)  # its events fulfil the entry, notify
    view = ctx.offer_view(cancellation.offer(offer.id or 0), cancellation)
    if result.outcome == ClaimOutcome.TOO_LATE:
        ctx.record("claim_too_late", cancellation_id=cancellation.id, offer_id=offer.id)
    return ctx.answer(result.outcome.value, view)


def accept(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    language: str | None = None,
) -> dict:
    return _run(uow, settings, now, phone, message_id, "accept", _accept, language)


# ----------------------------------------------------------------------------------------------
# decline, defer, availability, leave


def _decline(ctx: ReplyContext) -> dict[str, Any]:
    offer = _current_offer(ctx)
    if offer is None or not offer.is_pending:
        return ctx.answer("no_open_offer")
    cancellation = ctx.uow.cancellations.get(offer.cancellation_id)
    assert cancellation is not None
    if not _close_pending_offer(ctx, model.OfferState.DECLINED, "declined"):
        return ctx.answer("no_open_offer")
    ctx.record(
        "offer_declined_by_patient", cancellation_id=offer.cancellation_id, offer_id=offer.id
    )
    return ctx.answer("declined", ctx.offer_view(offer, cancellation))


def decline(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    language: str | None = None,
) -> dict:
    return _run(uow, settings, now, phone, message_id, "decline", _decline, language)


def defer(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    not_before: date,
    language: str | None = None,
) -> dict:
    def handler(ctx: ReplyContext) -> dict[str, Any]:
        assert ctx.patient is not None
        entries = ctx.uow.waitlist.active_for_patient(ctx.patient.id or 0)
        if not entries:
            return ctx.answer("not_on_waitlist")
        _close_pending_offer(ctx, model.OfferState.DECLINED, "deferred")
        for entry in entries:
            entry.defer_until(not_before, ctx.now)
            ctx.record(
                "entry_deferred", entry_id=entry.id, data={"not_before": not_before.isoformat()}
            )
        return ctx.answer("deferred", None, not_before=not_before.isoformat())

    return _run(uow, settings, now, phone, message_id, "defer", handler, language)


def update_availability(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    days_of_week: list[int] | None,
    time_of_day: str | None,
    not_after: date | None,
    language: str | None = None,
) -> dict:
    def handler(ctx: ReplyContext) -> dict[str, Any]:
        assert ctx.patient is not None
        entries = ctx.uow.waitlist.active_for_patient(ctx.patient.id or 0)
        if not entries:
            return ctx.answer("not_on_waitlist")
        for entry in entries:
            if days_of_week is not None:
                entry.days_of_week = sorted(set(days_of_week)) or None
            if time_of_day is not None:
                entry.earliest_time, entry.latest_time = TIME_OF_DAY[time_of_day]
            if not_after is not None:
                entry.not_after = not_after
            entry.updated_at = ctx.now
            ctx.record("entry_availability_updated", entry_id=entry.id)
        return ctx.answer("availability_updated")

    return _run(uow, settings, now, phone, message_id, "availability", handler, language)


def _leave(ctx: ReplyContext) -> dict[str, Any]:
    assert ctx.patient is not None
    entries = ctx.uow.waitlist.active_for_patient(ctx.patient.id or 0)
    if not entries:
        return ctx.answer("not_on_waitlist")
    _close_pending_offer(ctx, model.OfferState.DECLINED, "left waitlist")
    for entry in entries:
        entry.remove(ctx.now)
        ctx.record("entry_removed", entry_id=entry.id)
    return ctx.answer("left_waitlist")


def leave(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    language: str | None = None,
) -> dict:
    return _run(uow, settings, now, phone, message_id, "leave", _leave, language)


# ----------------------------------------------------------------------------------------------
# consent and handoff


def opt_out_patient(ctx: ReplyContext, reason: str) -> None:
    """Stop all messages: withdraw the pending offer (no notice: they asked for silence)."""
    assert ctx.patient is not None
    if ctx.patient.opt_out(ctx.now):
        ctx.record("patient_opted_out", data={"reason": reason})
    _close_pending_offer(ctx, model.OfferState.WITHDRAWN, "opted out")


def _opt_out(ctx: ReplyContext) -> dict[str, Any]:
    opt_out_patient(ctx, "patient")
    return ctx.answer("opted_out")


def opt_out(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    language: str | None = None,
) -> dict:
    return _run(uow, settings, now, phone, message_id, "opt_out", _opt_out, language)


def _opt_in(ctx: ReplyContext) -> dict[str, Any]:
    assert ctx.patient is not None
    if ctx.patient.wrong_number_at is not None:
        # whoever holds this number now is not our patient: only staff can put it back
        ctx.record("opt_in_refused", data={"reason": "number reported as wrong"})
        return ctx.answer("wrong_number")
    if ctx.patient.opt_in(ctx.now):
        ctx.record("patient_opted_in")
    return ctx.answer("opted_in")


def opt_in(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    language: str | None = None,
) -> dict:
    return _run(uow, settings, now, phone, message_id, "opt_in", _opt_in, language)


HANDOFF_REASONS = ("talk_to_person", "wrong_number", "counter_proposal", "emergency", "bereavement")
# Someone else answers this number now: never text it again until staff fix the record.
NUMBER_NOT_THE_PATIENTS = ("wrong_number", "bereavement")


def handoff(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    phone: str,
    message_id: str,
    reason: str,
    text: str | None = None,
    language: str | None = None,
) -> dict:
    def handler(ctx: ReplyContext) -> dict[str, Any]:
        assert ctx.patient is not None
        data = {"reason": reason} if text is None else {"reason": reason, "text": text}
        ctx.record("handoff_requested", data=data)
        if reason in NUMBER_NOT_THE_PATIENTS:
            if ctx.patient.report_wrong_number(ctx.now):
                ctx.record("patient_wrong_number", data={"reason": reason})
            opt_out_patient(ctx, reason.replace("_", " "))
            return ctx.answer("handoff_recorded")
        # the answer names the offer the patient asked about ("could I come at 4 instead?")
        offer = _current_offer(ctx)
        if offer is None:
            return ctx.answer("handoff_recorded")
        cancellation = ctx.uow.cancellations.get(offer.cancellation_id)
        assert cancellation is not None
        open_offer = offer.is_pending and cancellation.is_open
        view = ctx.offer_view(offer, cancellation) if open_offer else None
        return ctx.answer("handoff_recorded", view)

    return _run(uow, settings, now, phone, message_id, f"handoff:{reason}", handler, language)


def current_offer(uow: UnitOfWork, settings: Settings, now: datetime, phone: str) -> dict:
    ctx = ReplyContext(uow=uow, settings=settings, now=now, phone=phone)
    with uow:
        ctx.patient = uow.patients.by_phone(phone)
        if ctx.patient is None:
            return ctx.answer("unknown_patient")
        offer = _current_offer(ctx)
        if offer is None:
            return ctx.answer("no_open_offer")
        cancellation = uow.cancellations.get(offer.cancellation_id)
        assert cancellation is not None
        open_offer = offer.is_pending and cancellation.is_open
        return ctx.answer(
            "open_offer" if open_offer else "no_open_offer", ctx.offer_view(offer, cancellation)
        )
