"""Twilio status callbacks: signed, bounded, matched to the exact message they report."""

from __future__ import annotations

import logging

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from sms_common.phones import mask_phone
from sms_common.twilio_signature import FormParams, signature_is_valid, signed_url
from waitlist.entrypoints.http import backend_of, error
from waitlist.service_layer import dispatch

log = logging.getLogger(__name__)

# Twilio's callbacks are a few hundred bytes; anything near this is not Twilio.
MAX_WEBHOOK_BODY = 64 * 1024

twilio_bp = Blueprint("twilio", url_prefix="/webhooks/twilio")


@twilio_bp.post("/status")
async def twilio_status(request: Request) -> HTTPResponse:
    b = backend_of(request)
    if len(request.body or b"") > MAX_WEBHOOK_BODY:
        return error(413, "request body too large")
    params = FormParams.parse(request.body or b"")
    url = signed_url(b.settings.public_base_url, request.path, request.query_string)
    signature = request.headers.get("x-twilio-signature")
    if not signature_is_valid(b.settings.twilio_auth_token, url, params, signature):
        log.warning("status callback with a bad signature refused")
        return error(403, "invalid Twilio signature")
    phone, sid = params.first("To"), params.first("MessageSid")
    status = params.first("MessageStatus")
    if not (sid and status):
        return error(400, "MessageSid and MessageStatus are required")
    result = await b.run(
        dispatch.record_delivery_status,
        b.settings,
        b.clock.now(),
        request.args.get("ref"),
        sid,
        status,
        params.first("ErrorCode") or None,
    )
    log.info("status %s for %s to %s: %s", status, sid, mask_phone(phone), result)
    return HTTPResponse(status=204)
