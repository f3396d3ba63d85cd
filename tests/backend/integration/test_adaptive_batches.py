"""BATCH_MODE=adaptive through the service layer: each batch sized by the rule, each offer held
for its batch's hold, and the board saying why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.backend import builders as b
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.service_layer import board, dispatch, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

ADAPTIVE = Settings.from_env({"CLINIC_TIMEZONE": "America/New_York", "BATCH_MODE": "adaptive"})


def test_a_slot_close_to_its_cutoff_gets_a_bigger_batch_and_says_why(
    uow_factory: Callable[[], UnitOfWork], clock: FakeClock, messenger: RecordingMessenger
) -> None:
    uow, now = uow_factory(), clock.now()
    derm = b.provider(uow, now)
    b.waitlisted(uow, now, ADAPTIVE, 40)
    far = b.cancellation(uow, now, ADAPTIVE, derm, starts_in=timedelta(days=3))
    soon = b.cancellation(uow, now, ADAPTIVE, derm, starts_in=timedelta(hours=1, minutes=20))

    far_offers, soon_offers = b.offers_of(uow, far), b.offers_of(uow, soon)
    assert 1 <= len(far_offers) < len(soon_offers)

    shown = {slot["id"]: slot for slot in board.board(uow, now, ADAPTIVE)["slots"]}
    assert shown[soon]["batch_reason"].startswith(f"{len(soon_offers)} at a time")
    assert "before offering stops" in shown[soon]["batch_reason"]
    assert "as aimed" in shown[far]["batch_reason"]

    with uow:
        kinds = uow.session.execute(
            sa.text("SELECT data FROM audit_events WHERE kind = 'offer_batch_sized'")
        ).all()
    assert sorted(row.data["offers_made"] for row in kinds) == sorted(
        [len(far_offers), len(soon_offers)]
    )

    # the text tells the batch's hold, and the hold runs from the moment it left
    dispatch.dispatch_due(uow, messenger, clock, ADAPTIVE)
    sent = {m.offer_id: m for m in messenger.sent}
    for offer in b.offers_of(uow, soon):
        held = datetime.fromisoformat(offer["expires_at"]) - datetime.fromisoformat(
            offer["sent_at"]
        )
        assert held == timedelta(minutes=sent[offer["id"]].hold_minutes)


def test_fixed_modes_say_their_batch_too(
    uow_factory: Callable[[], UnitOfWork], clock: FakeClock
) -> None:
    settings = Settings.from_env({"CLINIC_TIMEZONE": "America/New_York"})
    uow, now = uow_factory(), clock.now()
    derm = b.provider(uow, now)
    b.waitlisted(uow, now, settings, 5)
    slot = b.cancellation(uow, now, settings, derm)
    [shown] = board.board(uow, now, settings)["slots"]
    assert shown["id"] == slot
    reason = "3 at a time, 7-minute holds (rolling seats, BATCH_MODE=rolling)"
    assert shown["batch_reason"] == reason
    assert staff.get_cancellation(uow_factory(), slot)["batch_reason"] == reason
