"""Staff JSON API under /api/v1 (bearer STAFF_API_TOKEN)."""

from __future__ import annotations

from datetime import timedelta

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import String

from waitlist.domain import model
from waitlist.entrypoints import responses, schemas
from waitlist.entrypoints.docs import CLINIC_DAY, operation, paged
from waitlist.entrypoints.http import (
    IDEMPOTENCY_HEADER,
    ApiError,
    authenticate,
    backend_of,
    entry_input,
    idempotent,
    page_args,
    parse,
    query_date,
    query_value,
    require_admin,
    staff_name,
)
from waitlist.service_layer import accounts, board, followups, staff, stats

staff_bp = Blueprint("staff", url_prefix="/api/v1")


@staff_bp.on_request
async def require_staff(request: Request) -> None:
    await authenticate(request)


@staff_bp.post("/providers")
@operation("providers", responses.Provider, status=201, body=schemas.CreateProvider)
async def create_provider(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateProvider)
    view = await b.run(
        staff.create_provider, body.name, body.provider_type, b.clock.now(), staff_name(request)
    )
    return json(view, status=201)


@staff_bp.get("/providers")
@paged("providers", responses.Provider)
async def list_providers(request: Request) -> HTTPResponse:
    limit, offset = page_args(request)
    return json(await backend_of(request).run(staff.list_providers, limit, offset))


@staff_bp.post("/patients")
@operation(
    "patients",
    responses.Patient,
    status=201,
    body=schemas.CreatePatient,
    errors=(409,),
    example={"phone": "+12025550123", "display_name": "Ana", "preferred_language": "es"},
)
async def create_patient(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreatePatient)
    view = await b.run(
        staff.create_patient,
        body.phone,
        body.display_name,
        body.preferred_language,
        body.consent_source,
        b.clock.now(),
        staff_name(request),
    )
    return json(view, status=201)


@staff_bp.get("/patients")
@paged("patients", responses.Patient, default_limit=20)
@openapi.parameter(
    "q",
    String(maxLength=100, default=""),
    description="part of the name, or 3+ digits of the phone number (none: everyone)",
)
async def search_patients(request: Request) -> HTTPResponse:
    """Find patients by name or phone: `{items, total, next}`."""
    text = query_value(request, "q") or ""
    if len(text) > 100:
        raise ApiError(400, "q has at most 100 characters", "q")
    limit, offset = page_args(request, default_limit=20)
    return json(await backend_of(request).run(staff.search_patients, text, limit, offset))


@staff_bp.get("/patients/<patient_id:row_id>")
@operation("patients", responses.Patient, ids=("patient_id",))
async def get_patient(request: Request, patient_id: int) -> HTTPResponse:
    return json(await backend_of(request).run(staff.get_patient, patient_id))


@staff_bp.get("/patients/<patient_id:row_id>/history")
@operation("patients", responses.History, ids=("patient_id",))
async def patient_history(request: Request, patient_id: int) -> HTTPResponse:
    """The patient page: waitlist entries with their score breakdown, offers, SMS transcript."""
    b = backend_of(request)
    return json(await b.run(staff.patient_history, patient_id, b.clock.now(), b.settings))


@staff_bp.patch("/patients/<patient_id:row_id>")
@operation(
    "patients",
    responses.Patient,
    body=schemas.CorrectPatientNumber,
    ids=("patient_id",),
    errors=(409,),
)
async def correct_patient_number(request: Request, patient_id: int) -> HTTPResponse:
    """Fix a record whose number reached the wrong person: a new number, or this one confirmed."""
    b = backend_of(request)
    body = parse(request, schemas.CorrectPatientNumber)
    view = await b.run(
        staff.correct_patient_number, patient_id, body.phone, b.clock.now(), staff_name(request)
    )
    return json(view)


@staff_bp.get("/messaging")
@operation("audit", responses.Messaging)
async def messaging_health(request: Request) -> HTTPResponse:
    """Whether texts are leaving: the circuit breaker (paused offering) and the outbox depth."""
    return json(await backend_of(request).run(staff.messaging_health))


@staff_bp.post("/waitlist")
@operation(
    "waitlist",
    responses.Entry,
    status=201,
    body=schemas.CreateEntry,
    errors=(404, 409),
    example={"patient_id": 1, "provider_type": "dermatology", "days_of_week": ["mon", "thu"]},
)
async def create_entry(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateEntry)
    data, fields = entry_input(body)
    view = await b.run(
        staff.add_to_waitlist,
        body.patient_id,
        data,
        fields,
        b.clock.now(),
        b.settings,
        staff_name(request),
    )
    return json(view, status=201)


@staff_bp.get("/waitlist")
@paged("waitlist", responses.Entry)
@openapi.parameter("status", String(enum=[s.value for s in model.EntryStatus]))
async def list_entries(request: Request) -> HTTPResponse:
    b = backend_of(request)
    status = query_value(request, "status")
    if status is not None and status not in {s.value for s in model.EntryStatus}:
        raise ApiError(400, "status must be active, fulfilled or removed", "status")
    limit, offset = page_args(request)
    return json(await b.run(staff.list_entries, status, limit, offset, b.clock.now(), b.settings))


@staff_bp.get("/waitlist/<entry_id:row_id>")
@operation("waitlist", responses.Entry, ids=("entry_id",))
async def get_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    return json(await b.run(staff.get_entry, entry_id, b.clock.now(), b.settings))


@staff_bp.patch("/waitlist/<entry_id:row_id>")
@operation("waitlist", responses.Entry, body=schemas.UpdateEntry, ids=("entry_id",), errors=(409,))
async def update_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    data, fields = entry_input(parse(request, schemas.UpdateEntry))
    view = await b.run(
        staff.update_entry, entry_id, data, fields, b.clock.now(), b.settings, staff_name(request)
    )
    return json(view)


@staff_bp.post("/waitlist/<entry_id:row_id>/boost")
@operation("waitlist", responses.Entry, body=schemas.Boost, ids=("entry_id",), errors=(409,))
async def boost_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.Boost)
    data = staff.EntryInput(manual_boost=body.manual_boost)
    view = await b.run(
        staff.update_entry,
        entry_id,
        data,
        {"manual_boost"},
        b.clock.now(),
        b.settings,
        staff_name(request),
    )
    return json(view)


@staff_bp.delete("/waitlist/<entry_id:row_id>")
@operation("waitlist", responses.Entry, ids=("entry_id",))
async def remove_entry(request: Request, entry_id: int) -> HTTPResponse:
    b = backend_of(request)
    view = await b.run(staff.remove_entry, entry_id, b.clock.now(), b.settings, staff_name(request))
    return json(view)


@staff_bp.post("/cancellations")
@operation(
    "slots",
    responses.Cancellation,
    status=201,
    body=schemas.CreateCancellation,
    errors=(404, 409),
    example={
        "provider_id": 1,
        "location": "Main Street",
        "slot_start": "2026-12-03T10:00:00-05:00",
        "slot_end": "2026-12-03T10:30:00-05:00",
    },
)
@openapi.parameter(
    IDEMPOTENCY_HEADER,
    String(minLength=1, maxLength=255),
    "header",
    description="a retry with the same key gets the first answer again",
)
async def create_cancellation(request: Request) -> HTTPResponse:
    b = backend_of(request)
    body = parse(request, schemas.CreateCancellation)

    async def create() -> tuple[int, dict]:
        view = await b.run(
            staff.create_cancellation,
            body.provider_id,
            body.location,
            body.slot_start,
            body.slot_end,
            b.clock.now(),
            b.settings,
            staff_name(request),
        )
        return 201, view

    # a double click or a retried request: the same slot twice is refused (409 with its id);
    # with an Idempotency-Key the retry gets the first answer instead
    return await idempotent(request, "POST /api/v1/cancellations", create)


@staff_bp.get("/cancellations")
@paged("slots", responses.Cancellation)
@openapi.parameter(
    "status",
    String(enum=[*(s.value for s in model.CancellationStatus), "all"], default="open"),
)
async def list_cancellations(request: Request) -> HTTPResponse:
    status = query_value(request, "status")
    status = "open" if status is None else status
    if status not in {s.value for s in model.CancellationStatus} | {"all"}:
        raise ApiError(400, "status must be open, filled, expired, aborted or all", "status")
    limit, offset = page_args(request)
    return json(
        await backend_of(request).run(
            staff.list_cancellations, None if status == "all" else status, limit, offset
        )
    )


@staff_bp.get("/cancellations/<cancellation_id:row_id>")
@operation("slots", responses.Cancellation, ids=("cancellation_id",))
async def get_cancellation(request: Request, cancellation_id: int) -> HTTPResponse:
    return json(await backend_of(request).run(staff.get_cancellation, cancellation_id))


@staff_bp.get("/cancellations/<cancellation_id:row_id>/why")
@operation("slots", responses.Why, ids=("cancellation_id",))
async def explain_cancellation(request: Request, cancellation_id: int) -> HTTPResponse:
    """Why a slot is or is not filling: how many waitlisted entries each rule excludes now."""
    b = backend_of(request)
    return json(await b.run(staff.explain_cancellation, cancellation_id, b.clock.now(), b.settings))


@staff_bp.post("/cancellations/<cancellation_id:row_id>/abort")
@operation("slots", responses.Cancellation, ids=("cancellation_id",), errors=(409,))
async def abort_cancellation(request: Request, cancellation_id: int) -> HTTPResponse:
    b = backend_of(request)
    view = await b.run(
        staff.abort_cancellation, cancellation_id, b.clock.now(), staff_name(request)
    )
    return json(view)


@staff_bp.get("/events")
@paged("audit", responses.Event)
@openapi.parameter("kind", str, description="only events of this kind, e.g. handoff_requested")
async def list_events(request: Request) -> HTTPResponse:
    limit, offset = page_args(request)
    kind = query_value(request, "kind")
    return json(await backend_of(request).run(staff.list_events, kind, limit, offset))


@staff_bp.get("/board")
@operation("front desk", responses.Board)
async def board_view(request: Request) -> HTTPResponse:
    """Open slots, soonest first: each seat's patient, offer and text state, the hold's end, and
    what happens next."""
    b = backend_of(request)
    return json(await b.run(board.board, b.clock.now(), b.settings))


@staff_bp.get("/followups/booked")
@paged("front desk", responses.Booked)
async def booked_to_enter(request: Request) -> HTTPResponse:
    """Fills not yet entered in the practice's schedule, oldest first; `overdue` after
    SCHEDULE_ENTRY_DUE_MINUTES."""
    b = backend_of(request)
    limit, offset = page_args(request)
    return json(await b.run(followups.booked_to_enter, b.clock.now(), b.settings, limit, offset))


@staff_bp.post("/followups/booked/<cancellation_id:row_id>/entered")
@operation("front desk", responses.Entered, ids=("cancellation_id",), errors=(409,))
async def booking_entered(request: Request, cancellation_id: int) -> HTTPResponse:
    """The booking is in the practice's schedule (audited with the user's name)."""
    b = backend_of(request)
    return json(
        await b.run(followups.mark_entered, cancellation_id, b.clock.now(), staff_name(request))
    )


@staff_bp.get("/followups/callbacks")
@paged("front desk", responses.Callback)
async def callbacks(request: Request) -> HTTPResponse:
    """Patients to call back (handoffs not yet done): emergencies first, then the oldest; with
    the patient's name, phone, the reason and their last message."""
    limit, offset = page_args(request)
    return json(await backend_of(request).run(followups.callbacks, limit, offset))


@staff_bp.post("/followups/callbacks/<handoff_id:row_id>/done")
@operation(
    "front desk",
    responses.CallbackClosed,
    body=schemas.CallbackDone,
    body_required=False,
    ids=("handoff_id",),
)
async def callback_done(request: Request, handoff_id: int) -> HTTPResponse:
    """Close a call-back, with an optional note (audited with the user's name)."""
    b = backend_of(request)
    body = parse(request, schemas.CallbackDone) if request.body else schemas.CallbackDone()
    view = await b.run(
        followups.close_callback, handoff_id, body.note, b.clock.now(), staff_name(request)
    )
    return json(view)


@staff_bp.get("/stats")
@operation("front desk", responses.Stats, errors=(400,))
@openapi.parameter("from", CLINIC_DAY, description="first clinic day (default: 6 days before `to`)")
@openapi.parameter("to", CLINIC_DAY, description="last clinic day (default: today)")
async def fill_stats(request: Request) -> HTTPResponse:
    """Fill rate, time to fill, offers per fill, acceptance, opt-outs, delivery failures."""
    b = backend_of(request)
    tz = b.settings.clinic_timezone
    last = query_date(request, "to") or b.clock.now().astimezone(tz).date()
    first = query_date(request, "from") or last - timedelta(days=6)
    if first > last:
        raise ApiError(400, "from must not be after to", "from")
    if (last - first).days >= stats.MAX_DAYS:
        raise ApiError(400, f"at most {stats.MAX_DAYS} days at once", "from")
    return json(await b.run(stats.fill_stats, first, last, tz))


@staff_bp.get("/users")
@paged("staff accounts", responses.StaffUser)
async def list_staff_users(request: Request) -> HTTPResponse:
    """Staff accounts (admins only)."""
    require_admin(request)
    limit, offset = page_args(request)
    return json(await backend_of(request).run(accounts.list_users, limit, offset))


@staff_bp.post("/users")
@operation(
    "staff accounts",
    responses.StaffUser,
    status=201,
    body=schemas.CreateStaffUser,
    errors=(403, 409),
)
async def add_staff_user(request: Request) -> HTTPResponse:
    """Add a staff account (admins only): front_desk or admin."""
    admin = require_admin(request)
    b = backend_of(request)
    body = parse(request, schemas.CreateStaffUser)
    view = await b.run(
        accounts.add_user, body.username, body.password, body.role, b.clock.now(), admin.username
    )
    return json(view, status=201)


@staff_bp.post("/users/<user_id:row_id>/token")
@operation("staff accounts", responses.ApiToken, status=201, ids=("user_id",), errors=(403,))
async def issue_api_token(request: Request, user_id: int) -> HTTPResponse:
    """A personal API token for integrations, shown once (for yourself, or any user if admin)."""
    identity: accounts.Identity = request.ctx.staff
    if identity.user_id != user_id:
        require_admin(request)
    b = backend_of(request)
    token = await b.run(accounts.issue_api_token, user_id, b.clock.now(), identity.username)
    return json({"user_id": user_id, "api_token": token}, status=201)
